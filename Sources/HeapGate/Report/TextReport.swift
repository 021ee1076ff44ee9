/// Renders reports in valgrind memcheck's wording and layout, so that people and existing
/// log scrapers read them without a manual.
public enum TextReport {
    public static func render(_ report: ProcessReport, toolLine: Bool = true) -> String {
        var lines: [String] = []
        if toolLine {
            lines.append("heapgate, a heap tracker and leak gate")
            lines.append("Command: " + report.command.joined(separator: " "))
            lines.append("")
        }
        if !report.isComplete {
            lines.append("WARNING: this trace is incomplete (the process was killed, crashed or is still running);")
            lines.append("WARNING: the figures below cover only what was recorded.")
            lines.append("")
        }
        if report.lostEvents > 0 {
            lines.append("WARNING: \(grouped(report.lostEvents)) events were lost before tracing started.")
        }
        lines.append("HEAP SUMMARY:")
        lines.append("    in use at exit: \(grouped(report.bytesInUse)) bytes in \(grouped(report.blocksInUse)) blocks")
        lines.append("  total heap usage: \(grouped(report.allocs)) allocs, \(grouped(report.frees)) frees, \(grouped(report.bytesAllocated)) bytes allocated")
        lines.append("")
        for (index, record) in report.records.enumerated() {
            lines.append("\(grouped(record.bytes)) bytes in \(grouped(record.blocks)) blocks are in use at exit in record \(index + 1) of \(report.records.count)")
            for (position, frame) in record.frames.enumerated() {
                lines.append((position == 0 ? "   at " : "   by ") + render(frame))
            }
            lines.append("")
        }
        let prefix = "==\(report.pid)== "
        return lines.map { $0.isEmpty ? "==\(report.pid)==" : prefix + $0 }.joined(separator: "\n") + "\n"
    }

    /// `0x4C2DB8F: malloc (file.c:12)`, `… (in /lib/x.so)` without line info, `???` without a name.
    static func render(_ frame: ReportFrame) -> String {
        let address = "0x" + String(frame.address.dropFirst(2)).uppercased()
        let function = frame.function ?? "???"
        if let module = frame.module, ReportBuilder.baseName(module) == "libheapgate.so" {
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
