import Foundation
import Testing

/// `--xml=yes --xml-file=FILE` writes memcheck's XML (protocol 4), for tools that read valgrind's:
/// the same leak errors as valgrind's XML for the same program (kind, bytes, blocks, and the
/// function, file and line of every frame under the allocator), one file per process with %p.
@Suite("XML output, as valgrind's --xml=yes")
struct XMLOutputTests {
    /// One `<error>`: what tools read from it.
    struct LeakError: Equatable, CustomStringConvertible {
        var kind: String
        var bytes: String
        var blocks: String
        /// "function dir/file:line" of each frame under the allocator's (`<dir>`: tools open the
        /// source from it).
        var frames: [String]
        var description: String { "\(kind) \(bytes) B \(blocks) blocks at \(frames)" }
    }

    /// The text between the first `<tag>` and its `</tag>` in `xml`, if any.
    static func element(_ tag: String, in xml: Substring) -> Substring? {
        guard let open = xml.range(of: "<\(tag)>"), let close = xml.range(of: "</\(tag)>", range: open.upperBound..<xml.endIndex) else { return nil }
        return xml[open.upperBound..<close.lowerBound]
    }

    /// Every part of `xml` between `<tag>` and `</tag>`.
    static func elements(_ tag: String, in xml: Substring) -> [Substring] {
        var found: [Substring] = []
        var rest = xml
        while let open = rest.range(of: "<\(tag)>"), let close = rest.range(of: "</\(tag)>", range: open.upperBound..<rest.endIndex) {
            found.append(rest[open.upperBound..<close.lowerBound])
            rest = rest[close.upperBound...]
        }
        return found
    }

    static func errors(in xml: String) -> [LeakError] {
        elements("error", in: xml[...]).map { error in
            let frames = elements("frame", in: error).dropFirst().map { frame in
                "\(element("fn", in: frame) ?? "?") \(element("dir", in: frame) ?? "?")/\(element("file", in: frame) ?? "?"):\(element("line", in: frame) ?? "?")"
            }
            return LeakError(kind: String(element("kind", in: error) ?? ""), bytes: String(element("leakedbytes", in: error) ?? ""),
                             blocks: String(element("leakedblocks", in: error) ?? ""), frames: frames)
        }
    }

    @Test(.enabled(if: Harness.valgrindAvailable, "valgrind is not installed at /usr/bin/valgrind"),
          arguments: [["leakclass_c", "list"], ["leakclass_c", "cycle3"], ["leak_basic"]])
    func sameErrorsAsValgrind(_ command: [String]) throws {
        try Harness.withTemporaryDirectory { directory in
            let argv = [Harness.fixture(command[0])] + command.dropFirst()
            let heapgate = try Harness.execute(Harness.heapgate, ["run", "--xml=yes", "--xml-file=\(directory)/heapgate.xml", "--"] + argv)
            #expect(heapgate.status == 0, "\(heapgate.stderr)")
            _ = try Harness.execute("/usr/bin/valgrind", ["--leak-check=full", "--run-libc-freeres=no", "--xml=yes",
                                                         "--xml-file=\(directory)/valgrind.xml"] + argv)
            let ours = try String(contentsOfFile: directory + "/heapgate.xml", encoding: .utf8)
            let theirs = try String(contentsOfFile: directory + "/valgrind.xml", encoding: .utf8)
            #expect(!Self.errors(in: ours).isEmpty)
            #expect(Self.errors(in: ours) == Self.errors(in: theirs))
            #expect(ours.hasPrefix("<?xml version=\"1.0\"?>") && ours.contains("<protocolversion>4</protocolversion>"))
        }
    }

    /// Arguments with control characters leave a file that parses: XML 1.0 allows no ESC, not
    /// even as a reference, and valgrind's file, which writes it raw, does not parse.
    @Test func controlCharactersInArgumentsKeepTheFileWellFormed() throws {
        try Harness.withTemporaryDirectory { directory in
            let file = directory + "/heapgate.xml"
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--xml=yes", "--xml-file=\(file)", "--",
                                                                 Harness.fixture("leak_basic"), "esc\u{1B}ape", "a<b", "line\nbreak"])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let xml = try String(contentsOfFile: file, encoding: .utf8)
            #expect(!xml.unicodeScalars.contains("\u{1B}"))
            #expect(xml.contains("<line>Command: \(Harness.fixture("leak_basic")) esc_ape a&lt;b line_break</line>"), "\(xml)")
            #expect(xml.contains("<arg>esc_ape</arg>") && xml.contains("<arg>a&lt;b</arg>") && xml.contains("<arg>line\nbreak</arg>"))
        }
    }

    /// A suppressed loss record is no <error>; <suppcounts> counts the records each suppression
    /// matched, as valgrind's does (here 2: the list's definitely and indirectly lost records).
    @Test func suppressionsAreCounted() throws {
        try Harness.withTemporaryDirectory { directory in
            let suppressions = directory + "/list.supp"
            try "{\n   list_nodes\n   Memcheck:Leak\n   ...\n   fun:list_node\n}\n".write(toFile: suppressions, atomically: true, encoding: .utf8)
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--xml=yes", "--xml-file=\(directory)/out.xml",
                                                                 "--suppressions=\(suppressions)", "--",
                                                                 Harness.fixture("leakclass_c"), "list"])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let xml = try String(contentsOfFile: directory + "/out.xml", encoding: .utf8)
            #expect(Self.errors(in: xml).isEmpty)
            let pairs = Self.elements("pair", in: Self.element("suppcounts", in: xml[...]) ?? "")
            #expect(pairs.map { "\(Self.element("name", in: $0) ?? "") \(Self.element("count", in: $0) ?? "")" } == ["list_nodes 2"])
        }
    }

    @Test func oneFilePerProcessWithPercentP() throws {
        try Harness.withTemporaryDirectory { directory in
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--xml=yes", "--xml-file=\(directory)/out.%p.xml", "--",
                                                                 Harness.fixture("fork_child")])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".xml") }.sorted()
            #expect(files.count == 2, "\(files)")
            var leaked: [String] = []
            for file in files {
                let xml = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
                #expect(file == "out.\(Self.element("pid", in: xml[...]) ?? "?").xml")
                leaked += Self.errors(in: xml).map { "\($0.bytes) \($0.frames.first ?? "")" }
            }
            // fork_child: the parent loses 16 and 64 bytes, the child 16 (inherited) and 48. The
            // fixtures are compiled from the checkout's Tests/Fixtures/src, which DWARF records
            // whole (`<dir>`); the checkout's own path is left out here.
            let shown = leaked.map { $0.replacing(#/ /.*/Tests/Fixtures/src//#, with: " src/") }
            #expect(shown.sorted() == ["16 parent_leak src/fork_child.c:27", "16 parent_leak src/fork_child.c:27",
                                       "48 child_leak src/fork_child.c:34", "64 parent_after_fork src/fork_child.c:41"].sorted(),
                    "\(leaked)")
        }
    }

    @Test func xmlNeedsAFile() throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--xml=yes", "--", Harness.fixture("clean_c")])
        #expect(outcome.status == 64)
        #expect(outcome.stderr.contains("--xml=yes needs --xml-file=FILE"), "\(outcome.stderr)")
    }
}
