import Foundation
import Testing
@testable import HeapGate

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

    /// `<dir>` is absolute, as memcheck's, where the line table's is relative: leak_rust is
    /// compiled from a path relative to the repository (`rustc Tests/Fixtures/src/…`), and a
    /// tool joining `<dir>` and `<file>` could not open the source from `Tests/Fixtures/src`.
    @Test func directoriesAreAbsolute() throws {
        try Harness.withTemporaryDirectory { directory in
            let file = directory + "/heapgate.xml"
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--xml=yes", "--xml-file=\(file)", "--",
                                                                 Harness.fixture("leak_rust")])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let xml = try String(contentsOfFile: file, encoding: .utf8)
            let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/src").path
            let frames = Self.elements("frame", in: xml[...]).filter { Self.element("file", in: $0) == "leak_rust.rs" }
            #expect(!frames.isEmpty)
            #expect(frames.allSatisfy { Self.element("dir", in: $0).map(String.init) == sources }, "\(frames)")
            #expect(Self.elements("dir", in: xml[...]).allSatisfy { $0.hasPrefix("/") })
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

    /// --gen-suppressions=all puts each error's suppression in it, as memcheck does: `<sframe>`
    /// per line and the text report's block in `<rawtext>` (a CI plugin shows it to copy from).
    @Test func generatedSuppressionsAreInTheErrors() throws {
        try Harness.withTemporaryDirectory { directory in
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--xml=yes", "--xml-file=\(directory)/out.xml", "--gen-suppressions=all", "--show-leak-kinds=all",
                                                                 "--", Harness.fixture("leakclass_c"), "cycle3"])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let xml = try String(contentsOfFile: directory + "/out.xml", encoding: .utf8)
            let suppressions = Self.elements("error", in: xml[...]).map { Self.element("suppression", in: $0) ?? "" }
            #expect(suppressions.count == 3)
            let last = try #require(suppressions.last)
            #expect(Self.element("sname", in: last) == "insert_a_suppression_name_here")
            #expect(Self.element("skind", in: last) == "Memcheck:Leak")
            #expect(Self.element("skaux", in: last) == "match-leak-kinds: definite")
            #expect(Self.elements("sframe", in: last) == [" <fun>malloc</fun> ", " <fun>cycle_node</fun> ", " <fun>lose_cycle</fun> ", " <fun>main</fun> "])
            let block = "{\n   <insert_a_suppression_name_here>\n   Memcheck:Leak\n   match-leak-kinds: definite\n   fun:malloc\n   fun:cycle_node\n   fun:lose_cycle\n   fun:main\n}\n"
            let raw = Self.element("rawtext", in: last).map(String.init)
            #expect(raw == "\n<![CDATA[\n" + block + "]]>\n    ", "\(Array((raw ?? "").utf8))")
            #expect(outcome.stderr.contains(block))
            #expect(Self.element("skaux", in: suppressions[0]) == "match-leak-kinds: indirect")
        }
    }

    /// An object's path with "]]>" (or a character XML does not allow) in the raw suppression
    /// text: split between two CDATA sections, as the protocol says, so the file still parses.
    @Test func rawSuppressionTextKeepsTheFileWellFormed() throws {
        let element = XMLReport.suppression("{\n   <insert_a_suppression_name_here>\n   Memcheck:Leak\n   match-leak-kinds: possible\n   obj:/opt/a]]>b\u{1}/lib.so\n   fun:main\n}")
        #expect(element == """
              <suppression>
                <sname>insert_a_suppression_name_here</sname>
                <skind>Memcheck:Leak</skind>
                <skaux>match-leak-kinds: possible</skaux>
                <sframe> <obj>/opt/a]]&gt;b_/lib.so</obj> </sframe>
                <sframe> <fun>main</fun> </sframe>
                <rawtext>
            <![CDATA[
            {
               <insert_a_suppression_name_here>
               Memcheck:Leak
               match-leak-kinds: possible
               obj:/opt/a]]]]><![CDATA[>b_/lib.so
               fun:main
            }
            ]]>
                </rawtext>
              </suppression>

            """)
    }

    /// Without --gen-suppressions, no `<suppression>`.
    @Test func noSuppressionsUnlessAsked() throws {
        try Harness.withTemporaryDirectory { directory in
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--xml=yes", "--xml-file=\(directory)/out.xml", "--", Harness.fixture("leak_basic")])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let xml = try String(contentsOfFile: directory + "/out.xml", encoding: .utf8)
            #expect(Self.elements("error", in: xml[...]).count == 3 && !xml.contains("<suppression>"))
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
