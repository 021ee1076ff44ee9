/// Renders reports in valgrind memcheck's wording and layout, so that people and existing
/// log scrapers read them without a manual.
public enum TextReport {
    public static func render(_ report: ProcessReport, options: ReportOptions = ReportOptions(),
                              suppressionText: (LossRecord) -> String? = { _ in nil }) -> String {
        var lines: [String] = []
        if !options.quiet {
            lines.append("heapgate, a heap tracker and leak gate")
            lines.append("Command: " + CommandLineText.shown(report.command))
            lines.append("")
        }
        if report.stoppedForSandbox {
            lines.append("WARNING: tracing stopped when the process installed a seccomp filter, which could refuse heapgate's")
            lines.append("WARNING: own system calls; the figures below cover the process up to then, and leaks were not classified.")
            lines.append("")
        } else if !report.isComplete {
            lines.append("WARNING: this trace is incomplete (the process was killed, crashed, is still running, ran a program heapgate")
            lines.append("WARNING: cannot trace, or closed the trace file);")
            lines.append("WARNING: the figures below cover only what was recorded, and leaks were not classified.")
            lines.append("")
        }
        if let skipped = report.leakScanSkipped {
            lines.append("WARNING: leaks were not classified: \(skipped.explanation);")
            lines.append("WARNING: the blocks below are those in use at exit, and --error-exitcode fails the run.")
            lines.append("")
        }
        if report.lostEvents > 0 {
            lines.append("WARNING: \(grouped(report.lostEvents)) events were lost before tracing started.")
        }
        if report.addressesOfUnknownLibrary > 0 {
            let count = report.addressesOfUnknownLibrary
            lines.append("WARNING: \(grouped(count)) return \(count == 1 ? "address is" : "addresses are") shown as ??? because different libraries were loaded there at different times (dlopen, dlclose): heapgate cannot tell which one's code they were in.")
        }
        if report.allocationsWithoutStack > 0 {
            lines.append("WARNING: heapgate's limit of distinct stacks (HEAPGATE_MAX_STACKS) was reached: \(grouped(report.allocationsWithoutStack)) allocations")
            lines.append("WARNING: were recorded without their stack, and their blocks are shown with no frames.")
            lines.append("")
        }
        if let allocator = report.foreignAllocator {
            lines += allocatorLines(allocator, quiet: options.quiet)
        }
        for library in report.bypassingLibraries {
            lines.append("WARNING: \(library.path) called glibc's malloc and free directly, not through heapgate (it was loaded with RTLD_DEEPBIND);")
            lines.append(library.rebound
                ? "WARNING: heapgate redirected it when it noticed, so blocks it allocated or freed before then are missing or shown in use."
                : "WARNING: blocks it allocated are missing from this report, and blocks it freed are shown in use.")
        }
        if !report.bypassingLibraries.isEmpty { lines.append("") }
        if options.quiet {
            lines += shownLossRecords(report, options: options, suppressionText: suppressionText)
        } else {
            lines.append("HEAP SUMMARY:")
            lines.append("    in use at exit: \(grouped(report.bytesInUse)) bytes in \(grouped(report.blocksInUse)) blocks")
            lines.append("  total heap usage: \(grouped(report.allocs)) allocs, \(grouped(report.frees)) frees, \(grouped(report.bytesAllocated)) bytes allocated")
            lines.append("")
            if let leaks = report.leaks {
                lines += leakSection(report, leaks: leaks, options: options, suppressionText: suppressionText)
            } else {
                lines += inUseRecords(report, options: options)
                // As valgrind ends a run without a leak check; not for a trace that was cut or
                // not scanned, whose errors nobody counted.
                if options.leakCheck == .no && report.isComplete && report.leakScanSkipped == nil {
                    lines.append("For a detailed leak analysis, rerun with: --leak-check=full")
                    lines.append("")
                    lines.append(errorSummary(errors: 0, suppressed: 0))
                }
            }
        }
        guard !lines.isEmpty else { return "" }
        let prefix = "==\(report.pid)== "
        // Names from the trace (a library's path, a function's) are the traced program's to
        // choose: a newline in one would start a line without the prefix.
        // Into one string as they go: a second array of the prefixed lines doubled the memory
        // of a report of 55,000 records.
        var text = ""
        for line in lines {
            if line.isEmpty {
                text += "==\(report.pid)=="
            } else if line.hasPrefix(unprefixed) {
                text += CommandLineText.controlsReplaced(String(line.dropFirst()))
            } else {
                text += prefix
                text += CommandLineText.controlsReplaced(line)
            }
            text += "\n"
        }
        return text
    }

    /// Marks a line that is printed without the ==PID== prefix (a generated suppression's).
    private static let unprefixed = "\u{1}"


    /// An allocator that came with the program: a warning when its blocks went unseen, a note
    /// (not in -q) when glibc's replaced it, since blocks it handed out before are not counted.
    private static func allocatorLines(_ allocator: ForeignAllocator, quiet: Bool) -> [String] {
        if allocator.replaced {
            if quiet { return [] }
            return ["NOTE: \(allocator.displayName) defines its own malloc; heapgate replaced it with glibc's, as valgrind",
                    "NOTE: does with its own. Blocks it handed out before heapgate started are not counted.", ""]
        }
        return ["WARNING: \(allocator.displayName) defines its own malloc, which heapgate could not replace (\(allocator.reason ?? "unknown reason")):",
                "WARNING: the blocks it hands out are not traced, and the figures below leave them out.", ""]
    }

    /// Without a scan: every group of blocks in use (the leak check was off or the trace is cut).
    private static func inUseRecords(_ report: ProcessReport, options: ReportOptions) -> [String] {
        guard options.leakCheck == .full else { return [] }
        var lines: [String] = []
        for (index, record) in report.records.enumerated() {
            lines.append("\(grouped(record.bytes)) bytes in \(grouped(record.blocks)) blocks are in use at exit in record \(index + 1) of \(report.records.count)")
            lines += frameLines(record)
            lines.append("")
        }
        return lines
    }

    /// The loss records shown (ProcessReport.shownLossRecords), each followed by an empty line.
    private static func shownLossRecords(_ report: ProcessReport, options: ReportOptions,
                                         suppressionText: (LossRecord) -> String?) -> [String] {
        var lines: [String] = []
        for shown in report.shownLossRecords(options) {
            lines.append(shown.headline)
            lines += frameLines(shown.record)
            lines.append("")
            // As valgrind prints them: after the record's empty line and without the ==PID==
            // prefix, so that the block can be pasted into a suppressions file as it stands.
            if options.generateSuppressions, let text = suppressionText(shown.record) {
                lines += text.split(separator: "\n", omittingEmptySubsequences: false).map { unprefixed + $0 }
            }
        }
        return lines
    }

    private static func leakSection(_ report: ProcessReport, leaks: LeakTotals, options: ReportOptions,
                                    suppressionText: (LossRecord) -> String?) -> [String] {
        var lines: [String] = []
        // Not said when an allocator heapgate could not replace served the program: its blocks
        // were never seen (the warning above), so leaks are possible.
        if report.blocksInUse == 0 && report.foreignAllocator?.replaced != false {
            lines.append("All heap blocks were freed -- no leaks are possible")
            lines.append("")
            lines.append(errorSummary(errors: 0, suppressed: 0))
            return lines
        }
        let numbered = report.records.filter { $0.suppressedBy == nil }
        lines += shownLossRecords(report, options: options, suppressionText: suppressionText)
        lines.append("LEAK SUMMARY:")
        lines.append("   definitely lost: \(amount(leaks.definite))")
        lines.append("   indirectly lost: \(amount(leaks.indirect))")
        lines.append("     possibly lost: \(amount(leaks.possible))")
        lines.append("   still reachable: \(amount(leaks.reachable))")
        if !leaks.reachableViaHeuristic.isEmpty {
            lines.append("                      of which reachable via heuristic:")
            for heuristic in LeakHeuristic.allCases {
                guard let via = leaks.reachableViaHeuristic[heuristic] else { continue }
                let name = heuristic.rawValue + String(repeating: " ", count: max(0, 19 - heuristic.rawValue.count))
                lines.append("                        \(name): \(amount(via))")
            }
        }
        lines.append("        suppressed: \(amount(leaks.suppressed))")
        if options.leakCheck == .summary {
            lines.append("Rerun with --leak-check=full to see details of leaked memory")
        } else if !options.showLeakKinds.contains(.reachable), leaks.reachable.blocks > 0 {
            lines.append("Reachable blocks (those to which a pointer was found) are not shown.")
            lines.append("To see them, rerun with: --leak-check=full --show-leak-kinds=all")
        }
        lines.append("")
        // valgrind counts loss records as errors only with --leak-check=full, and prints the
        // line in every mode (log scrapers look for it).
        let full = options.leakCheck == .full
        let errors = full ? numbered.filter { $0.kind.leakKind.map(options.errorsForLeakKinds.contains) ?? false }.count : 0
        lines.append(errorSummary(errors: errors, suppressed: full ? report.records.count - numbered.count : 0))
        return lines
    }

    private static func errorSummary(errors: Int, suppressed: Int) -> String {
        "ERROR SUMMARY: \(errors) errors from \(errors) contexts (suppressed: \(suppressed) from \(suppressed))"
    }

    private static func amount(_ amount: Amount) -> String {
        "\(grouped(amount.bytes)) bytes in \(grouped(amount.blocks)) blocks"
    }

    private static func frameLines(_ record: LossRecord) -> [String] {
        record.frames.enumerated().map { position, frame in
            (position == 0 ? "   at " : "   by ") + render(frame, isCaller: position > 0)
        }
    }

    /// `0x4C2DB8F: malloc (file.c:12)`, `… (in /lib/x.so)` without line info, `???` without a name.
    static func render(_ frame: ReportFrame, isCaller: Bool = false) -> String {
        let address = frame.shownAddress(isCaller: isCaller)
        let function = frame.function ?? "???"
        if let module = frame.module, ModuleImage.isShim(module) {
            return "\(address): \(function) (libheapgate.so)"
        }
        if let file = frame.file, let line = frame.line {
            return "\(address): \(function) (\(file):\(line))"
        }
        if let module = frame.module { return "\(address): \(function) (in \(module))" }
        return "\(address): \(function)"
    }

    /// 4229 → "4,229", as valgrind prints counts.
    static func grouped(_ value: UInt64) -> String {
        let digits = String(value)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return out
    }
}
