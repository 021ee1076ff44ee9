#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Reads suppression files: valgrind's format (what `--suppressions=FILE` reads and
/// `--gen-suppressions` writes) and LeakSanitizer's (`leak:pattern` lines).
///
/// valgrind's format, as valgrind 3.x reads it:
///
///     # a comment: any line whose first non-blank character is '#'
///     {
///        a name, any text
///        Memcheck:Leak
///        match-leak-kinds: definite,possible
///        fun:malloc
///        ...
///        obj:*/libfoo.so*
///        src:foo.c:12
///     }
///
/// - Lines are trimmed; blank lines and comment lines are skipped everywhere.
/// - Each brace is alone on its line.
/// - The second line is `tool1,tool2,...:kind`. Blocks for tools other than Memcheck (for example
///   `Helgrind:Race`) are skipped up to their `}`, as valgrind skips them; Memcheck kinds must
///   be ones memcheck knows (`Leak`, `Addr4`, `Cond`, `Param`, …).
/// - `Memcheck:Leak` may be followed by `match-leak-kinds: K1,K2,...` (`definite`, `indirect`,
///   `possible`, `reachable`), `all` or `none`; without it, every kind matches.
///   `Memcheck:Param` is followed by the syscall parameter, `Memcheck:FishyValue` by
///   `function(argument)`.
/// - Then at most 500 location lines, at least one of them not `...`.
public enum SuppressionParser {
    /// valgrind's maximum number of location lines (VG_DEEPEST_BACKTRACE).
    public static let maxFrameLines = 500

    /// Parses `text`; `file` names it in the suppressions and errors. `format` nil: a file whose
    /// first line (after blanks and comments) is `{` is valgrind's, one whose first line has a
    /// `type:` prefix is LeakSanitizer's, anything else is read as valgrind's (and rejected).
    public static func parse(_ text: String, file: String, format: Suppression.Format? = nil) throws -> [Suppression] {
        switch format ?? detectFormat(text) {
        case .valgrind: return try parseValgrind(text, file: file)
        case .leakSanitizer: return try parseLeakSanitizer(text, file: file)
        }
    }

    /// Reads and parses the file at `path`.
    public static func load(path: String, format: Suppression.Format? = nil) throws -> [Suppression] {
        let data = Data(try contents(of: path))
        guard let text = String(data: data, encoding: .utf8) else {
            throw SuppressionFileError(file: path, line: 0, reason: "suppressions file is not UTF-8 text")
        }
        return try parse(text, file: path, format: format)
    }

    /// The most a suppressions file that is not a regular file may hold: a device that never
    /// runs dry (/dev/zero) would otherwise be read until memory ran out.
    static let deviceReadLimit = 64 << 20

    /// The bytes of the file at `path`. Opened without blocking and checked by its type, so
    /// that nothing waits: a FIFO, whose open waited for a writer and whose read for the
    /// writer's end, and a directory are refused; a character device is read as it stands, so
    /// /dev/null is an empty file, as an empty regular file is (it was "cannot read"), and a
    /// terminal, which has nothing to read yet, cannot be read.
    static func contents(of path: String) throws -> [UInt8] {
        func refuse(_ reason: String) -> SuppressionFileError { SuppressionFileError(file: path, line: 0, reason: reason) }
        guard let file = ReadOnlyFile(path: path, nonBlocking: true) else {
            throw refuse(FileStatus.exists(path) ? "cannot read suppressions file" : "no such suppressions file")
        }
        switch file.type {
        case S_IFDIR?: throw refuse("is a directory, not a suppressions file")
        case S_IFIFO?: throw refuse("is a FIFO (named pipe), not a suppressions file: give a regular file")
        case S_IFREG?:
            guard let bytes = file.readToEnd() else { throw refuse("cannot read suppressions file") }
            return bytes
        default:
            guard let bytes = file.readToEnd(limit: deviceReadLimit) else {
                throw refuse("cannot read suppressions file (a device that has nothing to read yet, or never ends)")
            }
            return bytes
        }
    }

    static func detectFormat(_ text: String) -> Suppression.Format {
        var reader = LineReader(text)
        guard let first = reader.next() else { return .valgrind }
        if first.text == "{" { return .valgrind }
        if let colon = first.text.firstIndex(of: ":"), colon != first.text.startIndex,
           first.text[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
            return .leakSanitizer
        }
        return .valgrind
    }

    // MARK: valgrind

    /// Memcheck's suppression kinds (mc_errors.c, MC_(is_recognised_suppression)).
    static let memcheckKinds: Set<String> = [
        "Param", "User", "CoreMem", "Addr1", "Addr2", "Addr4", "Addr8", "Addr16", "Addr32", "Jump", "Free",
        "Leak", "Overlap", "Mempool", "Cond", "Value0", "Value1", "Value2", "Value4", "Value8", "Value16",
        "Value32", "FishyValue", "ReallocZero", "BadAlign", "BadSize", "SizeMismatch", "AlignMismatch",
    ]

    static func parseValgrind(_ text: String, file: String) throws -> [Suppression] {
        var reader = LineReader(text)
        var result: [Suppression] = []
        func fail(_ line: Int, _ reason: String) -> SuppressionFileError {
            SuppressionFileError(file: file, line: line, reason: reason)
        }

        while let open = reader.next() {
            guard open.text == "{" else {
                throw fail(open.number, "expected '{' or end of file, found '\(open.text)'")
            }
            func endOfFile(_ expecting: String) -> SuppressionFileError {
                fail(reader.lastLine, "unexpected end of file (\(expecting)) in the suppression that starts at line \(open.number)")
            }
            guard let name = reader.next() else { throw endOfFile("expected a suppression name") }
            if name.text == "}" { throw fail(name.number, "unexpected '}' (expected a suppression name)") }
            guard let toolLine = reader.next() else { throw endOfFile("expected a 'tool:kind' line") }
            if toolLine.text == "}" {
                throw fail(toolLine.number, "unexpected '}' (expected a 'tool:kind' line such as Memcheck:Leak)")
            }
            if isToolKindLine(name.text) && (isLocationLine(toolLine.text) || toolLine.text.hasPrefix("match-leak-kinds:")) {
                throw fail(name.number, "missing suppression name: the line after '{' is the 'tool:kind' line '\(name.text)'")
            }
            guard let colon = toolLine.text.firstIndex(of: ":") else {
                throw fail(toolLine.number, "malformed 'tool1,tool2,...:kind' line '\(toolLine.text)'")
            }
            let tools = toolLine.text[..<colon].split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingWhitespace() }
            let kind = toolLine.text[toolLine.text.index(after: colon)...].trimmingWhitespace()

            guard tools.contains("Memcheck") else {
                // Another tool's suppression: skipped unread up to its '}', as valgrind does.
                while true {
                    guard let line = reader.next() else { throw endOfFile("expected '}'") }
                    if line.text == "}" { break }
                }
                result.append(Suppression(
                    format: .valgrind, name: name.text, file: file, line: name.number, tools: tools, kind: kind,
                    leakKinds: []))
                continue
            }
            guard memcheckKinds.contains(kind) else {
                throw fail(toolLine.number, "unknown Memcheck suppression kind '\(kind)'")
            }

            var extraInfo: String?
            var leakKinds: Set<LeakKind> = kind == "Leak" ? Set(LeakKind.allCases) : []
            var pending: (text: String, number: Int)?
            switch kind {
            case "Param":
                guard let line = reader.next() else { throw endOfFile("expected the syscall parameter of Memcheck:Param") }
                if line.text == "}" || isLocationLine(line.text) {
                    throw fail(line.number, "missing syscall parameter line (such as 'write(buf)') after Memcheck:Param")
                }
                extraInfo = line.text
            case "FishyValue":
                guard let line = reader.next() else { throw endOfFile("expected 'function(argument)' after Memcheck:FishyValue") }
                guard let open = line.text.firstIndex(of: "("), line.text[open...].contains(")") else {
                    throw fail(line.number, "expected 'function(argument)' after Memcheck:FishyValue, found '\(line.text)'")
                }
                extraInfo = line.text
            case "Leak":
                guard let line = reader.next() else { throw endOfFile("expected 'match-leak-kinds:' or a location line") }
                if line.text.hasPrefix("match-leak-kinds:") {
                    let value = line.text.dropFirst("match-leak-kinds:".count).trimmingWhitespace()
                    leakKinds = try parseLeakKinds(value) { fail(line.number, $0) }
                } else if line.text == "}" || isLocationLine(line.text) {
                    pending = line
                } else {
                    throw fail(line.number, "expected 'match-leak-kinds: ...' or a location line after Memcheck:Leak, found '\(line.text)'")
                }
            default:
                break
            }

            var frames: [SuppressionPattern] = []
            while true {
                guard let line = pending ?? reader.next() else { throw endOfFile("expected a location line or '}'") }
                pending = nil
                if line.text == "}" {
                    if frames.isEmpty {
                        throw fail(line.number, "missing stack trace: a suppression needs at least one fun:, obj: or src: line")
                    }
                    if frames.allSatisfy({ $0 == .anyFrames }) {
                        throw fail(line.number, "suppression must contain at least one location line which is not \"...\"")
                    }
                    break
                }
                if frames.count == maxFrameLines {
                    throw fail(line.number, "too many callers in stack trace (at most \(maxFrameLines) location lines)")
                }
                frames.append(try parseLocation(line.text) { fail(line.number, $0) })
            }
            result.append(Suppression(
                format: .valgrind, name: name.text, file: file, line: name.number, tools: tools, kind: kind,
                extraInfo: extraInfo, leakKinds: leakKinds, frames: frames))
        }
        return result
    }

    /// `definite,possible`, `all` or `none` (valgrind's VG_(parse_enum_set) with "all" allowed).
    static func parseLeakKinds(_ value: String, fail: (String) -> SuppressionFileError) throws -> Set<LeakKind> {
        switch value {
        case "all": return Set(LeakKind.allCases)
        case "none": return []
        case "": throw fail("empty match-leak-kinds (expected definite, indirect, possible, reachable, all or none)")
        default: break
        }
        var kinds: Set<LeakKind> = []
        for token in value.split(separator: ",", omittingEmptySubsequences: false) {
            let word = token.trimmingWhitespace()
            guard let kind = LeakKind(rawValue: word) else {
                throw fail("unknown leak kind '\(word)' in match-leak-kinds (expected definite, indirect, possible, reachable, all or none)")
            }
            kinds.insert(kind)
        }
        return kinds
    }

    static func parseLocation(_ text: String, fail: (String) -> SuppressionFileError) throws -> SuppressionPattern {
        if text == "..." { return .anyFrames }
        let body = text.dropFirst(4).trimmingWhitespace()
        if text.hasPrefix("fun:") {
            guard !body.isEmpty else { throw fail("empty function name after 'fun:'") }
            return .function(body)
        }
        if text.hasPrefix("obj:") {
            guard !body.isEmpty else { throw fail("empty object name after 'obj:'") }
            return .object(body)
        }
        if text.hasPrefix("src:") {
            guard let colon = body.firstIndex(of: ":") else {
                guard !body.isEmpty else { throw fail("empty file name after 'src:'") }
                return .source(file: body, line: nil)
            }
            let name = String(body[..<colon])
            let number = body[body.index(after: colon)...]
            guard !name.isEmpty else { throw fail("empty file name after 'src:'") }
            guard let line = Int(number), line > 0 else {
                throw fail("bad line number '\(number)' in 'src:' (expected src:FILE or src:FILE:LINE)")
            }
            return .source(file: name, line: line)
        }
        throw fail("location should be \"...\", or should start with \"fun:\", \"obj:\", or \"src:\"; found '\(text)'")
    }

    static func isLocationLine(_ text: String) -> Bool {
        text == "..." || text.hasPrefix("fun:") || text.hasPrefix("obj:") || text.hasPrefix("src:")
    }

    /// `Memcheck:Leak`, `Helgrind,DRD:Race`: tool names, a colon, a kind, no spaces.
    static func isToolKindLine(_ text: String) -> Bool {
        guard let colon = text.firstIndex(of: ":"), !isLocationLine(text) else { return false }
        let tools = text[..<colon], kind = text[text.index(after: colon)...]
        let word: (Character) -> Bool = { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
        return !tools.isEmpty && !kind.isEmpty && tools.allSatisfy { word($0) || $0 == "," } && kind.allSatisfy(word)
    }

    // MARK: LeakSanitizer

    /// `type:pattern` lines; `leak:` lines suppress leaks, other types (ASan's, TSan's, UBSan's)
    /// are kept and never match a leak.
    static func parseLeakSanitizer(_ text: String, file: String) throws -> [Suppression] {
        var reader = LineReader(text)
        var result: [Suppression] = []
        while let line = reader.next() {
            guard let colon = line.text.firstIndex(of: ":"), colon != line.text.startIndex else {
                throw SuppressionFileError(
                    file: file, line: line.number, reason: "expected 'type:pattern' (such as leak:libfoo.so), found '\(line.text)'")
            }
            let type = line.text[..<colon].trimmingWhitespace()
            let pattern = line.text[line.text.index(after: colon)...].trimmingWhitespace()
            if type == "leak", pattern.isEmpty {
                throw SuppressionFileError(file: file, line: line.number, reason: "empty pattern after 'leak:'")
            }
            result.append(Suppression(
                format: .leakSanitizer, name: line.text, file: file, line: line.number, kind: type,
                leakKinds: type == "leak" ? Set(LeakKind.allCases) : [], pattern: pattern))
        }
        return result
    }
}

/// Yields the trimmed lines of a text that are neither blank nor comments (first non-blank
/// character '#'), with their 1-based numbers.
struct LineReader {
    private let lines: [Substring]
    private var index = 0
    /// Number of the last line read (skipped lines included); at the end, the file's last line.
    private(set) var lastLine = 0

    /// Splits at "\n" bytes (a "\r" before one is trimmed with the line's other blanks):
    /// splitting on `Character.isNewline` paid for grapheme breaking over the whole file.
    init(_ text: String) {
        var lines: [Substring] = []
        var start = text.startIndex
        var index = text.utf8.startIndex
        while index != text.utf8.endIndex {
            if text.utf8[index] == UInt8(ascii: "\n") {
                lines.append(text[start..<index])
                start = text.utf8.index(after: index)
            }
            index = text.utf8.index(after: index)
        }
        if start != text.endIndex { lines.append(text[start...]) }
        self.lines = lines
    }

    mutating func next() -> (text: String, number: Int)? {
        while index < lines.count {
            let text = lines[index].trimmingWhitespace()
            index += 1
            lastLine = index
            if text.isEmpty || text.hasPrefix("#") { continue }
            return (text, index)
        }
        return nil
    }
}
