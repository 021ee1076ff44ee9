/// Renders one process's report as memcheck's XML output (`--xml=yes`, protocol version 4), so
/// that tools written for valgrind's XML (CI dashboards, IDE plugins) read heapgate's: one
/// `<error>` per loss record shown (the kinds in --show-leak-kinds, with --leak-check=full), in
/// the order and with the numbering of the text report, with its `<suppression>` under
/// --gen-suppressions=all, and `<suppcounts>` for the suppressions that matched. Differences:
/// the preamble names heapgate, `<vargv>` holds heapgate's command line, and the two `<status>`
/// times are zero (the trace keeps no clock of the run). Frames carry `<dir>`, the source's
/// directory as DWARF records it, as memcheck's do.
public enum XMLReport {
    public static func render(_ report: ProcessReport, options: ReportOptions, heapgateArguments: [String]) -> String {
        var xml = "<?xml version=\"1.0\"?>\n\n<valgrindoutput>\n\n"
        xml += "<protocolversion>4</protocolversion>\n<protocoltool>memcheck</protocoltool>\n\n"
        xml += "<preamble>\n"
        xml += "  <line>heapgate, a heap tracker and leak gate</line>\n"
        xml += "  <line>\(escaped("Command: " + report.command.map(CommandLineText.controlsReplaced).joined(separator: " ")))</line>\n"
        xml += "</preamble>\n\n"
        xml += "<pid>\(report.pid)</pid>\n<ppid>\(report.parentPID)</ppid>\n<tool>memcheck</tool>\n\n"
        xml += "<args>\n" + argv("vargv", heapgateArguments) + argv("argv", report.command) + "</args>\n\n"
        xml += status("RUNNING") + "\n" + status("FINISHED") + "\n"
        for (index, shown) in report.shownLossRecords(options).enumerated() {
            xml += error(shown, unique: index + 1, suppression: options.generateSuppressions)
        }
        xml += "<errorcounts>\n</errorcounts>\n\n<suppcounts>\n"
        var uses: [String: Int] = [:]
        for record in report.records { if let name = record.suppressedBy { uses[name, default: 0] += 1 } }
        for (name, count) in uses.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) {
            xml += "  <pair>\n    <count>\(count)</count>\n    <name>\(escaped(name))</name>\n  </pair>\n"
        }
        xml += "</suppcounts>\n\n</valgrindoutput>\n\n"
        return xml
    }

    /// memcheck's error kinds for leaks.
    static func errorKind(_ kind: LeakKind) -> String {
        switch kind {
        case .definite: return "Leak_DefinitelyLost"
        case .indirect: return "Leak_IndirectlyLost"
        case .possible: return "Leak_PossiblyLost"
        case .reachable: return "Leak_StillReachable"
        }
    }

    private static func error(_ shown: ShownLossRecord, unique: Int, suppression: Bool) -> String {
        let record = shown.record
        var xml = "<error>\n  <unique>0x\(String(unique, radix: 16))</unique>\n  <tid>1</tid>\n"
        xml += "  <kind>\(errorKind(shown.kind))</kind>\n  <xwhat>\n    <text>\(escaped(shown.headline))</text>\n"
        xml += "    <leakedbytes>\(record.totalBytes)</leakedbytes>\n    <leakedblocks>\(record.blocks)</leakedblocks>\n  </xwhat>\n"
        xml += "  <stack>\n"
        for (position, frame) in record.frames.enumerated() {
            xml += "    <frame>\n      <ip>\(frame.shownAddress(isCaller: position > 0))</ip>\n"
            if let module = frame.module { xml += "      <obj>\(escaped(module))</obj>\n" }
            if let function = frame.function { xml += "      <fn>\(escaped(function))</fn>\n" }
            let isShim = frame.module.map(ModuleImage.isShim) ?? false // as the text report: no file, like valgrind's preload
            if !isShim, let file = frame.file, let line = frame.line {
                if let directory = frame.directory { xml += "      <dir>\(escaped(directory))</dir>\n" }
                xml += "      <file>\(escaped(file))</file>\n      <line>\(line)</line>\n"
            }
            xml += "    </frame>\n"
        }
        xml += "  </stack>\n"
        if suppression { xml += self.suppression(valgrindSuppression(for: record.suppressionFrames, kind: shown.kind)) }
        return xml + "</error>\n\n"
    }

    /// --gen-suppressions=all: the error's suppression as memcheck writes it inside `<error>`,
    /// line by line (`<sframe>`) and whole (`<rawtext>`), from the block the text report
    /// prints. (valgrind 3.19 also repeats the element after `</error>`, outside any element
    /// the protocol defines there; not copied.)
    static func suppression(_ text: String) -> String {
        let lines = text.split(separator: "\n").map { $0.trimmingPrefix("   ") }
        var xml = "  <suppression>\n    <sname>insert_a_suppression_name_here</sname>\n    <skind>Memcheck:Leak</skind>\n"
        for line in lines {
            if line.hasPrefix("match-leak-kinds:") { xml += "    <skaux>\(escaped(String(line)))</skaux>\n" }
            for tag in ["fun", "obj"] where line.hasPrefix(tag + ":") {
                xml += "    <sframe> <\(tag)>\(escaped(String(line.dropFirst(4))))</\(tag)> </sframe>\n"
            }
        }
        // CDATA cannot hold "]]>" (an object's path may): the protocol splits it between two
        // sections, the first ending in "]]", the next starting with ">".
        let raw = (text + "\n").replacing("]]>", with: "]]]]><![CDATA[>")
        return xml + "    <rawtext>\n<![CDATA[\n\(cdataSafe(raw))]]>\n    </rawtext>\n  </suppression>\n"
    }

    private static func argv(_ element: String, _ arguments: [String]) -> String {
        guard let executable = arguments.first else { return "  <\(element)>\n  </\(element)>\n" }
        var xml = "  <\(element)>\n    <exe>\(escaped(executable))</exe>\n"
        for argument in arguments.dropFirst() { xml += "    <arg>\(escaped(argument))</arg>\n" }
        return xml + "  </\(element)>\n"
    }

    private static func status(_ state: String) -> String {
        "<status>\n  <state>\(state)</state>\n  <time>00:00:00:00.000 </time>\n</status>\n"
    }

    /// Text as XML character data. Characters XML 1.0 does not allow at all (control
    /// characters other than tab, newline and carriage return; no reference can stand for
    /// them) become `_`, where valgrind writes them raw and its file no longer parses.
    static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                if isForbidden(scalar) { out += "_" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    /// Text for a CDATA section: nothing is escaped there, but characters XML does not allow
    /// still become `_`.
    static func cdataSafe(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { isForbidden($0) && !["\t", "\n", "\r"].contains($0) ? "_" : $0 }))
    }

    private static func isForbidden(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF
    }
}
