import CLibdw
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Symbolized frames kept across runs: for each module (by its GNU build id), the frames its
/// addresses resolved to, in `DIR/frames/BUILDID` beside the debug-file copies of
/// `DebugInfoCache`.
///
/// Why: a report re-reads the DWARF of every module a stack passes through, and a large
/// compile unit is costly to walk: the one block a Rust program keeps at exit has frames in
/// the standard library's single unit, whose index took 131 M of the 216 M instructions of
/// its `heapgate summary`. A program is usually traced again and again while it is worked
/// on (and in CI), and its stacks pass through the same addresses each time.
///
/// An answer is kept with where it came from. One made from DWARF stands as long as the
/// module's build id does: that id fixes its code and, through the id its debug file must
/// carry, its DWARF. One made from the symbol table alone (the module had no debug file) is
/// used only while the module still has none, so that a debug file installed later is read.
/// The file also records heapgate's own
/// build id, so that a rebuilt heapgate, whose answers may differ, starts afresh. A file is
/// written whole under a temporary name and renamed; concurrent runs may lose each other's
/// additions, never corrupt them. Files stop growing at `limit` addresses, and the directory
/// keeps the `keptModules` most recently written files (each rebuild of a program is a new
/// build id, and a new file).
final class FrameCache {
    private let directory: String?
    private let owner: String
    private let limit: Int
    private let keptModules: Int
    /// By build id (hex): the file as first read, and this run's additions.
    private var files: [String: KeptFile] = [:]
    private var added: [String: [UInt64: Entry]] = [:]
    private var keys: [[UInt8]: String] = [:]

    /// The first word of every file, with the format's version: files of another format (say
    /// version 1, whose frames had no recorded file name and would show base names) are
    /// ignored and then replaced, whoever wrote them.
    static let formatTag = "heapgate-frames 2"

    struct Entry: Equatable {
        var frames: [SourceFrame]
        /// False: made from the symbol table alone.
        var fromDWARF: Bool
    }

    /// - Parameter owner: whose answers the files hold (heapgate's build id by default); a
    ///   file written by another owner is ignored and then replaced.
    init(cache: DebugInfoCache, owner: String? = FrameCache.ownBuildID, limit: Int = 4096, keptModules: Int = 256) {
        directory = owner == nil ? nil : cache.directory.map { $0 + "/frames" }
        self.owner = owner ?? ""
        self.limit = limit
        self.keptModules = keptModules
    }

    /// The frames kept for `address` (file-relative) of the module with `buildID`.
    func entry(buildID: [UInt8], address: UInt64) -> Entry? {
        let key = self.key(buildID)
        return added[key]?[address] ?? file(key).entry(address)
    }

    /// True when a file holds answers for the module with `buildID`.
    func knows(buildID: [UInt8]) -> Bool {
        let key = self.key(buildID)
        return !file(key).lines.isEmpty || added[key] != nil
    }

    /// Remembers an answer, to be written by `store()`.
    func keep(_ entry: Entry, buildID: [UInt8], address: UInt64) {
        guard directory != nil, Self.encode(entry.frames) != nil else { return }
        let key = self.key(buildID)
        let kept = file(key).lines
        guard kept[address] != nil || kept.count + (added[key]?.count ?? 0) < limit else { return }
        added[key, default: [:]][address] = entry
    }

    /// The build id in hex, the files' name, made once per module: a report asks for every
    /// frame it shows.
    private func key(_ buildID: [UInt8]) -> String {
        if let known = keys[buildID] { return known }
        let made = hexString(buildID)
        keys[buildID] = made
        return made
    }

    /// The module's file (by build id in hex), read on first use.
    private func file(_ key: String) -> KeptFile {
        if let known = files[key] { return known }
        let read = read(key)
        files[key] = read
        return read
    }

    /// Writes the files that gained addresses, each merged with what another run may have
    /// added meanwhile. Quietly does nothing where that fails.
    func store() {
        guard let directory, !added.isEmpty else { return }
        guard (try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)) != nil else { return }
        for (key, additions) in added {
            // Read again: another run may have written the file meanwhile. Its lines are
            // copied as they are; only this run's answers are encoded.
            let kept = read(key)
            var count = kept.lines.count
            var answers: [UInt64: String] = [:]
            for (address, entry) in additions {
                guard kept.lines[address] != nil || count < limit, let encoded = Self.encode(entry.frames) else { continue }
                if kept.lines[address] == nil { count += 1 }
                answers[address] = (entry.fromDWARF ? "D" : "S") + encoded
            }
            var text = Array("\(Self.formatTag) \(owner)\n".utf8)
            for address in Set(kept.lines.keys).union(answers.keys).sorted() {
                text += Array(String(address, radix: 16).utf8)
                text.append(UInt8(ascii: "\t"))
                if let answer = answers[address] {
                    text += Array(answer.utf8)
                } else if let range = kept.lines[address] {
                    text += kept.bytes[range]
                }
                text.append(UInt8(ascii: "\n"))
            }
            let path = directory + "/" + key
            let temporary = path + ".\(getpid()).partial"
            guard FileManager.default.createFile(atPath: temporary, contents: Data(text)) else { continue }
            if rename(temporary, path) != 0 { unlink(temporary) }
        }
        added.removeAll()
        prune(directory)
    }

    /// Removes the least recently written files beyond `keptModules` (and partial files
    /// left by runs that died).
    private func prune(_ directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory), names.count > keptModules else { return }
        var files: [(name: String, written: Int)] = []
        for name in names {
            var info = stat()
            guard stat(directory + "/" + name, &info) == 0 else { continue }
            files.append((name, info.st_mtim.tv_sec))
        }
        files.sort { $0.written > $1.written }
        for file in files.dropFirst(keptModules) { unlink(directory + "/" + file.name) }
    }

    private func read(_ key: String) -> KeptFile {
        guard let directory, let data = FileManager.default.contents(atPath: directory + "/" + key) else { return KeptFile() }
        return KeptFile(bytes: [UInt8](data), header: "\(Self.formatTag) \(owner)")
    }

    /// A module's file as read: where each address's answer lies in it, decoded only when
    /// asked for. A report needs a few dozen of the thousands of addresses that libc's file
    /// collects, and decoding them all was a sixth of a short `heapgate run`'s own
    /// instructions (6.5 M of 40 M).
    private struct KeptFile {
        var bytes: [UInt8] = []
        /// By address: the rest of its line, after the tab (source letter and frames).
        var lines: [UInt64: Range<Int>] = [:]

        init() {}

        /// Indexes the lines that start with a hex address and a tab; none when the first
        /// line is not `header`.
        init(bytes: [UInt8], header: String) {
            let headerBytes = Array(header.utf8)
            guard bytes.count > headerBytes.count, bytes[headerBytes.count] == UInt8(ascii: "\n"),
                  bytes.starts(with: headerBytes) else { return }
            self.bytes = bytes
            var start = headerBytes.count + 1
            while start < bytes.count {
                let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
                var address: UInt64 = 0, at = start, digits = 0
                while at < end, digits <= 16, let digit = Self.hexDigit(bytes[at]) {
                    address = address << 4 | UInt64(digit)
                    at += 1
                    digits += 1
                }
                if digits > 0, digits <= 16, at < end, bytes[at] == UInt8(ascii: "\t") { lines[address] = (at + 1)..<end }
                start = end + 1
            }
        }

        func entry(_ address: UInt64) -> Entry? {
            guard let range = lines[address], let source = range.first.map({ bytes[$0] }),
                  source == UInt8(ascii: "D") || source == UInt8(ascii: "S"),
                  let frames = FrameCache.decode(bytes[(range.lowerBound + 1)..<range.upperBound])
            else { return nil }
            return Entry(frames: frames, fromDWARF: source == UInt8(ascii: "D"))
        }

        private static func hexDigit(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
            default: return nil
            }
        }
    }

    // One line per address: its hex value, a tab, D (from DWARF) or S (symbol table), then
    // the frames separated by U+001E, their fields by U+001F (function, linkage name, file,
    // line, inlined flag, inlined name, recorded file name), a missing string as an empty
    // field and a present one behind "=".
    private static let frameSeparator: Character = "\u{1E}"
    private static let fieldSeparator: Character = "\u{1F}"
    // Literals: derived from the Characters above, each read went through swift_once (60,000
    // calls in a short Swift program's report).
    private static let frameSeparatorByte: UInt8 = 0x1E
    private static let fieldSeparatorByte: UInt8 = 0x1F

    static func encode(_ frames: [SourceFrame]) -> String? {
        var parts: [String] = []
        for frame in frames {
            let strings = [frame.function, frame.linkageName, frame.file, frame.inlinedName, frame.fileName]
            for case let string? in strings where string.contains(where: { $0 == "\n" || $0 == "\t" || $0 == frameSeparator || $0 == fieldSeparator }) {
                return nil
            }
            let fields = strings.prefix(3).map { $0.map { "=" + $0 } ?? "" }
                + [frame.line.map(String.init) ?? "", frame.isInlined ? "1" : "0", frame.inlinedName.map { "=" + $0 } ?? "",
                   frame.fileName.map { "=" + $0 } ?? ""]
            parts.append(fields.joined(separator: String(fieldSeparator)))
        }
        return parts.isEmpty ? nil : parts.joined(separator: String(frameSeparator))
    }

    static func decode(_ text: Substring) -> [SourceFrame]? {
        decode(Array(text.utf8)[...])
    }

    /// One pass over the bytes, cutting at the separator bytes (ASCII, so never inside a
    /// multi-byte character). By Character, which has to find grapheme boundaries, a Rust
    /// stack's line of 3.5 KB took 0.5 M instructions; split into arrays of slices, frame
    /// and field, still 11 k an address (a tenth of a short Swift program's report).
    static func decode(_ bytes: ArraySlice<UInt8>) -> [SourceFrame]? {
        var frames: [SourceFrame] = []
        var fields: [Range<Int>] = []
        fields.reserveCapacity(7)
        var start = bytes.startIndex
        for index in bytes.startIndex...bytes.endIndex {
            let byte = index == bytes.endIndex ? frameSeparatorByte : bytes[index]
            guard byte == fieldSeparatorByte || byte == frameSeparatorByte else { continue }
            fields.append(start..<index)
            start = index + 1
            guard byte == frameSeparatorByte else { continue }
            guard fields.count == 7, let frame = frame(bytes, fields) else { return nil }
            frames.append(frame)
            fields.removeAll(keepingCapacity: true)
        }
        return frames.isEmpty ? nil : frames
    }

    /// The frame whose seven fields are at `fields` (function, linkage name, file, line,
    /// inlined flag, inlined name, recorded file name); nil when the line is not a number.
    private static func frame(_ bytes: ArraySlice<UInt8>, _ fields: [Range<Int>]) -> SourceFrame? {
        func string(_ field: Range<Int>) -> String? {
            guard !field.isEmpty, bytes[field.lowerBound] == UInt8(ascii: "=") else { return nil }
            return String(decoding: bytes[(field.lowerBound + 1)..<field.upperBound], as: UTF8.self)
        }
        let line: Int?
        if fields[3].isEmpty {
            line = nil
        } else {
            guard let value = decimal(bytes[fields[3]]) else { return nil }
            line = value
        }
        let flag = bytes[fields[4]]
        return SourceFrame(function: string(fields[0]), file: string(fields[2]), line: line,
                           isInlined: flag.count == 1 && flag.first == UInt8(ascii: "1"), linkageName: string(fields[1]),
                           inlinedName: string(fields[5]), fileName: string(fields[6]))
    }

    /// A decimal number, as `String(Int)` writes it.
    private static func decimal(_ digits: ArraySlice<UInt8>) -> Int? {
        var rest = digits[...]
        let negative = rest.first == UInt8(ascii: "-")
        if negative { rest = rest.dropFirst() }
        guard !rest.isEmpty, rest.count <= 18 else { return nil }
        var value = 0
        for byte in rest {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return negative ? -value : value
    }

    /// heapgate's own GNU build id (hex), read from /proc/self/exe; nil (no frame cache) when
    /// it has none.
    static let ownBuildID: String? = {
        let descriptor = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        return LibDW.elfBuildID(descriptor).map(hexString)
    }()
}
