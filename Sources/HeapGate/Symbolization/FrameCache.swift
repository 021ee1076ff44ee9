import CLibdw
import Foundation

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
    /// By build id (hex): what the file held when first read, plus this run's additions.
    private var tables: [String: [UInt64: Entry]] = [:]
    private var added: [String: [UInt64: Entry]] = [:]

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
        table(hexString(buildID))[address]
    }

    /// True when a file holds answers for the module with `buildID`.
    func knows(buildID: [UInt8]) -> Bool {
        !table(hexString(buildID)).isEmpty
    }

    /// Remembers an answer, to be written by `store()`.
    func keep(_ entry: Entry, buildID: [UInt8], address: UInt64) {
        guard directory != nil, Self.encode(entry.frames) != nil else { return }
        let key = hexString(buildID)
        guard table(key).count < limit else { return }
        tables[key, default: [:]][address] = entry
        added[key, default: [:]][address] = entry
    }

    /// The module's table (by build id in hex), read from its file on first use.
    private func table(_ key: String) -> [UInt64: Entry] {
        if let known = tables[key] { return known }
        let read = read(key)
        tables[key] = read
        return read
    }

    /// Writes the files that gained addresses, each merged with what another run may have
    /// added meanwhile. Quietly does nothing where that fails.
    func store() {
        guard let directory, !added.isEmpty else { return }
        guard (try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)) != nil else { return }
        for (key, additions) in added {
            var table = read(key)
            for (address, entry) in additions where table.count < limit || table[address] != nil { table[address] = entry }
            var text = "heapgate-frames 1 \(owner)\n"
            for (address, entry) in table.sorted(by: { $0.key < $1.key }) {
                guard let encoded = Self.encode(entry.frames) else { continue }
                text += String(address, radix: 16) + "\t" + (entry.fromDWARF ? "D" : "S") + encoded + "\n"
            }
            let path = directory + "/" + key
            let temporary = path + ".\(getpid()).partial"
            guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8)) else { continue }
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

    private func read(_ key: String) -> [UInt64: Entry] {
        guard let directory, let data = FileManager.default.contents(atPath: directory + "/" + key) else { return [:] }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        guard let header = lines.first, header == "heapgate-frames 1 \(owner)" else { return [:] }
        var table: [UInt64: Entry] = [:]
        for line in lines.dropFirst() {
            guard let tab = line.firstIndex(of: "\t"), let address = UInt64(line[..<tab], radix: 16) else { continue }
            let rest = line[line.index(after: tab)...]
            guard let source = rest.first, source == "D" || source == "S",
                  let frames = Self.decode(rest.dropFirst()) else { continue }
            table[address] = Entry(frames: frames, fromDWARF: source == "D")
        }
        return table
    }

    // One line per address: its hex value, a tab, D (from DWARF) or S (symbol table), then
    // the frames separated by U+001E, their fields by U+001F, a missing string as an empty
    // field and a present one behind "=".
    private static let frameSeparator: Character = "\u{1E}"
    private static let fieldSeparator: Character = "\u{1F}"

    static func encode(_ frames: [SourceFrame]) -> String? {
        var parts: [String] = []
        for frame in frames {
            let strings = [frame.function, frame.linkageName, frame.file]
            for case let string? in strings where string.contains(where: { $0 == "\n" || $0 == "\t" || $0 == frameSeparator || $0 == fieldSeparator }) {
                return nil
            }
            let fields = strings.map { $0.map { "=" + $0 } ?? "" }
                + [frame.line.map(String.init) ?? "", frame.isInlined ? "1" : "0"]
            parts.append(fields.joined(separator: String(fieldSeparator)))
        }
        return parts.isEmpty ? nil : parts.joined(separator: String(frameSeparator))
    }

    static func decode(_ text: Substring) -> [SourceFrame]? {
        var frames: [SourceFrame] = []
        for part in text.split(separator: frameSeparator, omittingEmptySubsequences: false) {
            let fields = part.split(separator: fieldSeparator, omittingEmptySubsequences: false)
            guard fields.count == 5 else { return nil }
            func string(_ field: Substring) -> String? { field.first == "=" ? String(field.dropFirst()) : nil }
            let line: Int?
            if fields[3].isEmpty { line = nil } else if let value = Int(fields[3]) { line = value } else { return nil }
            frames.append(SourceFrame(function: string(fields[0]), file: string(fields[2]), line: line,
                                      isInlined: fields[4] == "1", linkageName: string(fields[1])))
        }
        return frames.isEmpty ? nil : frames
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
