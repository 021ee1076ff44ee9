import Foundation
import Testing
@testable import HeapGate

/// Namespace so that `swift test --filter Suppression` selects all of these suites.
enum SuppressionTests {}

// MARK: - Helpers

extension SuppressionTests {
    static let heapgateLib = "/usr/local/lib/heapgate/libheapgate.so"
    static let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6"
    static let libstdcxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
    static let app = "/home/me/app"

    /// A frame whose mangled and demangled names are the same (C).
    static func c(_ name: String, _ object: String = app, file: String? = nil, line: Int? = nil) -> SuppressionFrame {
        SuppressionFrame(linkageName: name, function: name, object: object, file: file, line: line)
    }

    static func frame(_ mangled: String, _ demangled: String, _ object: String = app) -> SuppressionFrame {
        SuppressionFrame(linkageName: mangled, function: demangled, object: object)
    }

    static let unknown = SuppressionFrame()

    static func parse(_ text: String, format: Suppression.Format? = nil) throws -> SuppressionSet {
        try SuppressionSet.parse(text, file: "test.supp", format: format)
    }

    /// A one-block valgrind file for a leak suppression with these location lines.
    static func leakBlock(_ lines: [String], kinds: String? = nil, name: String = "test") -> String {
        (["{", "   " + name, "   Memcheck:Leak"] + (kinds.map { ["   match-leak-kinds: " + $0] } ?? [])
            + lines.map { "   " + $0 } + ["}"]).joined(separator: "\n") + "\n"
    }

    static func matches(_ lines: [String], _ frames: [SuppressionFrame], kind: LeakKind = .definite,
                        kinds: String? = nil) throws -> Bool {
        try parse(leakBlock(lines, kinds: kinds)).firstMatch(frames: frames, kind: kind) != nil
    }

    /// The error parsing `text` throws, or nil.
    static func parseError(_ text: String, format: Suppression.Format? = nil) -> SuppressionFileError? {
        do {
            _ = try parse(text, format: format)
            return nil
        } catch let error as SuppressionFileError {
            return error
        } catch {
            return nil
        }
    }
}

// MARK: - Parsing

extension SuppressionTests {
    @Suite struct ValgrindParsing {
        @Test func readsAFullFile() throws {
            let text = """
            # A comment before anything.

            {
               leak-in-foo
               Memcheck:Leak
               match-leak-kinds: definite,possible
               fun:malloc
               fun:foo*
               ...
               obj:*/libbar.so*
               src:foo.c:12
               src:bar.c
            }
              # indented comment
            {
            \tplain-leak
            \tMemcheck:Leak
            \tfun:calloc\t
            }
            {
               write-param
               Memcheck:Param
               write(buf)
               fun:write
               fun:main
            }
            {
               a-race
               Helgrind:Race
               fun:whatever
               this is not even a location line
            }
            {
               both-tools
               Memcheck,Helgrind:Addr4
               obj:*
            }
            {
               reachable-only
               Memcheck:Leak
               match-leak-kinds: reachable
               fun:malloc
            }
            {
               everything
               Memcheck:Leak
               match-leak-kinds: all
               fun:malloc
            }
            {
               nothing
               Memcheck:Leak
               match-leak-kinds: none
               fun:malloc
            }
            """
            let set = try SuppressionTests.parse(text)
            let s = set.suppressions
            #expect(s.map(\.name) == ["leak-in-foo", "plain-leak", "write-param", "a-race", "both-tools",
                                      "reachable-only", "everything", "nothing"])
            #expect(s.map(\.line) == [4, 16, 21, 28, 34, 39, 45, 51])
            #expect(s.allSatisfy { $0.format == .valgrind && $0.file == "test.supp" })

            #expect(s[0].tools == ["Memcheck"] && s[0].kind == "Leak" && s[0].isLeakSuppression)
            #expect(s[0].leakKinds == [.definite, .possible])
            #expect(s[0].frames == [.function("malloc"), .function("foo*"), .anyFrames, .object("*/libbar.so*"),
                                    .source(file: "foo.c", line: 12), .source(file: "bar.c", line: nil)])
            #expect(s[1].leakKinds == Set(LeakKind.allCases))
            #expect(s[1].frames == [.function("calloc")])
            #expect(s[2].kind == "Param" && s[2].extraInfo == "write(buf)" && !s[2].isLeakSuppression)
            #expect(s[2].frames == [.function("write"), .function("main")])
            #expect(s[3].tools == ["Helgrind"] && s[3].kind == "Race" && s[3].frames.isEmpty && !s[3].isLeakSuppression)
            #expect(s[4].tools == ["Memcheck", "Helgrind"] && s[4].kind == "Addr4" && !s[4].isLeakSuppression)
            #expect(s[5].leakKinds == [.reachable])
            #expect(s[6].leakKinds == Set(LeakKind.allCases))
            #expect(s[7].leakKinds.isEmpty)
        }

        @Test func crlfLineEndingsAndNoFinalNewline() throws {
            let text = "{\r\n  n\r\n  Memcheck:Leak\r\n  fun:malloc\r\n}"
            let set = try SuppressionTests.parse(text)
            #expect(set.suppressions.count == 1)
            #expect(set.suppressions[0].frames == [.function("malloc")])
        }

        @Test func emptyAndCommentOnlyFilesHaveNoSuppressions() throws {
            #expect(try SuppressionTests.parse("").suppressions.isEmpty)
            #expect(try SuppressionTests.parse("# nothing\n\n   # here\n").suppressions.isEmpty)
        }

        @Test func otherMemcheckKindsNeverMatchALeak() throws {
            let set = try SuppressionTests.parse("""
            {
               n
               Memcheck:Addr4
               fun:malloc
            }
            {
               m
               Memcheck:FishyValue
               malloc(size)
               fun:malloc
            }
            """)
            #expect(set.suppressions[1].extraInfo == "malloc(size)")
            #expect(set.firstMatch(frames: [SuppressionTests.c("malloc", SuppressionTests.heapgateLib)], kind: .definite) == nil)
        }

        /// (text, line, part of the reason)
        static let malformed: [(String, Int, String)] = [
            ("foo\n", 1, "expected '{' or end of file"),
            ("{ name\n", 1, "expected '{'"),
            ("# c\n\n{\n  n\n  Memcheck:Leak\n  fun:malloc\n}\n}\n", 8, "expected '{'"),
            ("{\n", 1, "unexpected end of file"),
            ("{\n}\n", 2, "unexpected '}' (expected a suppression name)"),
            ("{\n  name\n", 2, "unexpected end of file (expected a 'tool:kind' line)"),
            ("{\n  name\n}\n", 3, "expected a 'tool:kind' line"),
            ("{\n  name\n  MemcheckLeak\n  fun:malloc\n}\n", 3, "malformed 'tool1,tool2,...:kind' line"),
            ("{\n  name\n  Memcheck:Leek\n  fun:malloc\n}\n", 3, "unknown Memcheck suppression kind 'Leek'"),
            ("{\n  Memcheck:Leak\n  fun:malloc\n}\n", 2, "missing suppression name"),
            ("{\n  Memcheck:Leak\n  match-leak-kinds: all\n  fun:malloc\n}\n", 2, "missing suppression name"),
            ("{\n  n\n  Memcheck:Leak\n  match-leak-kinds: definite,lost\n  fun:malloc\n}\n", 4, "unknown leak kind 'lost'"),
            ("{\n  n\n  Memcheck:Leak\n  match-leak-kinds: definite,all\n  fun:malloc\n}\n", 4, "unknown leak kind 'all'"),
            ("{\n  n\n  Memcheck:Leak\n  match-leak-kinds:\n  fun:malloc\n}\n", 4, "empty match-leak-kinds"),
            ("{\n  n\n  Memcheck:Leak\n  match-leak-kind: definite\n  fun:malloc\n}\n", 4, "expected 'match-leak-kinds: ...'"),
            ("{\n  n\n  Memcheck:Leak\n}\n", 4, "missing stack trace"),
            ("{\n  n\n  Memcheck:Leak\n  match-leak-kinds: all\n}\n", 5, "missing stack trace"),
            ("{\n  n\n  Memcheck:Leak\n  ...\n  ...\n}\n", 6, "at least one location line which is not \"...\""),
            ("{\n  n\n  Memcheck:Leak\n  fun:malloc\n  foo:bar\n}\n", 5, "location should be \"...\""),
            ("{\n  n\n  Memcheck:Leak\n  fun:malloc\n  match-leak-kinds: all\n}\n", 5, "location should be"),
            ("{\n  n\n  Memcheck:Leak\n  fun:malloc\n", 4, "unexpected end of file (expected a location line or '}')"),
            ("{\n  n\n  Memcheck:Leak\n  fun:malloc\n  fun:main\n  # trailing comment\n\n", 7, "unexpected end of file"),
            ("{\n  n\n  Memcheck:Leak\n  fun:\n}\n", 4, "empty function name"),
            ("{\n  n\n  Memcheck:Leak\n  obj:\n}\n", 4, "empty object name"),
            ("{\n  n\n  Memcheck:Leak\n  src:\n}\n", 4, "empty file name"),
            ("{\n  n\n  Memcheck:Leak\n  src:foo.c:x\n}\n", 4, "bad line number 'x'"),
            ("{\n  n\n  Memcheck:Leak\n  src:foo.c:0\n}\n", 4, "bad line number '0'"),
            ("{\n  n\n  Memcheck:Param\n  fun:write\n}\n", 4, "missing syscall parameter line"),
            ("{\n  n\n  Memcheck:Param\n", 3, "unexpected end of file (expected the syscall parameter"),
            ("{\n  n\n  Memcheck:FishyValue\n  malloc\n  fun:malloc\n}\n", 4, "expected 'function(argument)'"),
            ("{\n  n\n  Helgrind:Race\n  fun:x\n", 4, "unexpected end of file (expected '}')"),
            ("{\n  n\n  Memcheck:Leak\n  fun:malloc\n}\n{\n  m\n", 7, "in the suppression that starts at line 6"),
        ]

        @Test(arguments: malformed)
        func rejectsMalformedFiles(text: String, line: Int, reason: String) {
            let error = SuppressionTests.parseError(text)
            #expect(error != nil, "accepted: \(text.debugDescription)")
            guard let error else { return }
            #expect(error.file == "test.supp")
            #expect(error.line == line, "\(error)")
            #expect(error.reason.contains(reason), "\(error)")
            #expect(!error.description.contains("\n"))
        }

        @Test func rejectsMoreThan500LocationLines() {
            let lines = (0..<501).map { "fun:f\($0)" }
            let error = SuppressionTests.parseError(SuppressionTests.leakBlock(lines))
            #expect(error?.line == 504)
            #expect(error?.reason.contains("too many callers") == true)
            #expect(SuppressionTests.parseError(SuppressionTests.leakBlock(Array(lines.prefix(500)))) == nil)
        }

        @Test func errorDescriptionIsFileLineReason() {
            let error = SuppressionFileError(file: "my.supp", line: 7, reason: "bad thing")
            #expect(error.description == "my.supp:7: bad thing")
            #expect(SuppressionFileError(file: "my.supp", line: 0, reason: "no such suppressions file").description
                    == "my.supp: no such suppressions file")
        }

        @Test func loadReadsFilesAndReportsMissingOnes() throws {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("heapgate-supp-\(UUID().uuidString).supp").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            try SuppressionTests.leakBlock(["fun:malloc"]).write(toFile: path, atomically: true, encoding: .utf8)
            let set = try SuppressionSet.load(paths: [path])
            #expect(set.suppressions.count == 1 && set.suppressions[0].file == path)
            #expect(throws: SuppressionFileError.self) { try SuppressionSet.load(paths: [path + ".missing"]) }
            do {
                _ = try SuppressionSet.load(paths: [path + ".missing"])
            } catch let error as SuppressionFileError {
                #expect(error.line == 0 && error.file == path + ".missing")
            }
        }

        /// /dev/null is an empty suppressions file, as an empty regular file is (it was "cannot
        /// read suppressions file"). A FIFO, whose open waits for a writer, and a directory are
        /// refused at once, each with its own reason.
        @Test func deviceFIFOAndDirectory() throws {
            #expect(try SuppressionSet.load(paths: ["/dev/null"]).suppressions.isEmpty)
            try Harness.withTemporaryDirectory { directory in
                let fifo = directory + "/supp.fifo"
                try #require(mkfifo(fifo, 0o600) == 0)
                for (path, reason) in [(fifo, "is a FIFO (named pipe), not a suppressions file: give a regular file"),
                                       (directory, "is a directory, not a suppressions file")] {
                    #expect(throws: SuppressionFileError(file: path, line: 0, reason: reason)) {
                        try SuppressionSet.load(paths: [path])
                    }
                }
            }
        }
    }

    @Suite struct LeakSanitizerParsing {
        @Test func readsLeakLinesAndKeepsOtherTypes() throws {
            let set = try SuppressionTests.parse("""
            # LSan suppressions
            leak:libfoo.so

            leak:^make_widget$
              race:some_race
            leak:  spaced  \n
            """)
            let s = set.suppressions
            #expect(s.count == 4)
            #expect(s.allSatisfy { $0.format == .leakSanitizer })
            #expect(s.map(\.line) == [2, 4, 5, 6])
            #expect(s.map(\.pattern) == ["libfoo.so", "^make_widget$", "some_race", "spaced"])
            #expect(s.map(\.isLeakSuppression) == [true, true, false, true])
            #expect(s[0].name == "leak:libfoo.so")
            #expect(s[0].leakKinds == Set(LeakKind.allCases))
        }

        @Test(arguments: [
            ("leak:foo\nnot a suppression\n", 2, "expected 'type:pattern'"),
            ("leak:foo\n:bar\n", 2, "expected 'type:pattern'"),
            ("# c\nleak:\n", 2, "empty pattern after 'leak:'"),
        ])
        func rejectsMalformedLines(text: String, line: Int, reason: String) {
            let error = SuppressionTests.parseError(text, format: .leakSanitizer)
            #expect(error?.line == line)
            #expect(error?.reason.contains(reason) == true, "\(String(describing: error))")
        }

        @Test func formatIsDetectedFromTheFirstLine() throws {
            #expect(try SuppressionTests.parse("# x\nleak:foo\n").suppressions.first?.format == .leakSanitizer)
            #expect(try SuppressionTests.parse("# x\n{\n n\n Memcheck:Leak\n fun:f\n}\n").suppressions.first?.format == .valgrind)
            #expect(SuppressionTests.parseError("leak:foo\n", format: .valgrind)?.line == 1)
        }
    }
}

// MARK: - Matching

extension SuppressionTests {
    @Suite struct Wildcards {
        @Test(arguments: [
            ("malloc", "malloc", true),
            ("malloc", "malloc2", false),
            ("malloc", "xmalloc", false),
            ("mall?c", "malloc", true),
            ("mall?c", "mallc", false),
            ("*", "", true),
            ("*", "???", true),
            ("?", "", false),
            ("???", "abc", true),
            ("???", "abcd", false),
            ("*alloc", "calloc", true),
            ("*alloc", "allocate", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("*/libstdc++.so*", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", true),
            ("*/ld-linux*.so*", "/lib64/ld-linux-x86-64.so.2", true),
            ("*a*a*a*a*a*b", String(repeating: "a", count: 200), false),
            ("_Z*N5swift4LazyI*", "_ZZN5swift4LazyIN12_GLOBAL__N_110TupleCacheEE19defaultInitCallbackEPv", true),
            ("$ss15_print_unlocked*", "$ss15_print_unlockedyyx_q_zts16TextOutputStreamR_r0_lF", true),
        ])
        func valgrindWildcards(pattern: String, text: String, expected: Bool) {
            #expect(SuppressionMatcher.wildcardMatch(pattern, text) == expected)
        }
    }

    @Suite struct ValgrindMatching {
        typealias T = SuppressionTests
        static let stack = [T.c("malloc", T.heapgateLib), T.c("helper"), T.c("work"), T.c("main")]

        @Test func linesMatchAPrefixOfTheStackFromFrameZero() throws {
            #expect(try T.matches(["fun:malloc"], Self.stack))
            #expect(try T.matches(["fun:malloc", "fun:helper"], Self.stack))
            #expect(try T.matches(["fun:malloc", "fun:helper", "fun:work", "fun:main"], Self.stack))
            #expect(try !T.matches(["fun:malloc", "fun:helper", "fun:work", "fun:main", "fun:more"], Self.stack))
            #expect(try !T.matches(["fun:helper"], Self.stack), "must start at frame 0")
            #expect(try !T.matches(["fun:malloc", "fun:work"], Self.stack), "no skipping without ...")
            #expect(try T.matches(["fun:*", "fun:h*", "obj:*/app"], Self.stack))
        }

        @Test func ellipsisMatchesZeroOrMoreFrames() throws {
            #expect(try T.matches(["fun:malloc", "...", "fun:main"], Self.stack))
            #expect(try T.matches(["fun:malloc", "...", "fun:helper"], Self.stack), "zero frames")
            #expect(try T.matches(["...", "fun:work"], Self.stack))
            #expect(try T.matches(["...", "fun:malloc"], Self.stack))
            #expect(try T.matches(["fun:malloc", "..."], Self.stack))
            #expect(try T.matches(["fun:malloc", "...", "fun:work", "..."], Self.stack))
            #expect(try T.matches(["fun:malloc", "...", "fun:helper", "...", "fun:main"], Self.stack))
            #expect(try !T.matches(["fun:malloc", "...", "fun:nowhere"], Self.stack))
            #expect(try !T.matches(["fun:malloc", "...", "fun:work", "fun:helper"], Self.stack), "order matters")
            #expect(try !T.matches(["fun:malloc", "...", "fun:main", "fun:more"], Self.stack))
        }

        @Test func manyEllipsesOnADeepStackStayFast() throws {
            let deep = [T.c("malloc", T.heapgateLib)] + (0..<400).map { T.c("f\($0)") }
            let lines = ["fun:malloc"] + Array(repeating: ["...", "fun:f*"], count: 60).flatMap { $0 } + ["...", "fun:absent"]
            #expect(try !T.matches(lines, deep))
        }

        @Test func matchLeakKinds() throws {
            #expect(try T.matches(["fun:malloc"], Self.stack, kind: .possible, kinds: "definite,possible"))
            #expect(try !T.matches(["fun:malloc"], Self.stack, kind: .reachable, kinds: "definite,possible"))
            #expect(try !T.matches(["fun:malloc"], Self.stack, kind: .indirect, kinds: "definite"))
            #expect(try T.matches(["fun:malloc"], Self.stack, kind: .indirect, kinds: "all"))
            #expect(try !T.matches(["fun:malloc"], Self.stack, kind: .definite, kinds: "none"))
            for kind in LeakKind.allCases {
                #expect(try T.matches(["fun:malloc"], Self.stack, kind: kind), "no match-leak-kinds line: every kind")
            }
        }

        @Test func funMatchesTheMangledName() throws {
            let stack = [T.c("malloc", T.heapgateLib), T.frame("_Z3fooi", "foo(int)"), T.c("main")]
            #expect(try T.matches(["fun:malloc", "fun:_Z3fooi"], stack))
            #expect(try T.matches(["fun:malloc", "fun:_Z3foo*"], stack))
            #expect(try !T.matches(["fun:malloc", "fun:foo*"], stack), "valgrind does not demangle for matching")
            // Without a linkage name, the only name there is.
            let plain = [T.c("malloc", T.heapgateLib), SuppressionFrame(function: "foo(int)", object: T.app)]
            #expect(try T.matches(["fun:malloc", "fun:foo(int)"], plain))
        }

        @Test func unknownFunctionsAndObjectsAreQuestionMarks() throws {
            let stack = [T.c("malloc", T.heapgateLib), SuppressionFrame(object: T.libstdcxx), T.unknown, T.c("main")]
            #expect(try T.matches(["fun:malloc", "fun:*", "fun:*", "fun:main"], stack))
            #expect(try T.matches(["fun:malloc", "fun:???", "obj:???"], stack))
            #expect(try T.matches(["fun:malloc", "obj:*/libstdc++.so*", "obj:*"], stack))
            #expect(try !T.matches(["fun:malloc", "fun:a*"], stack))
        }

        @Test func objMatchesTheObjectPath() throws {
            let stack = [T.c("malloc", T.heapgateLib), T.c("strdup", T.libc), T.c("main")]
            #expect(try T.matches(["fun:malloc", "obj:*/libc.so.6", "obj:/home/me/app"], stack))
            #expect(try !T.matches(["fun:malloc", "obj:libc.so.6"], stack), "the whole path must match")
        }

        @Test func inlinedFramesAreFrames() throws {
            let stack = [T.c("malloc", T.heapgateLib), T.c("inner"), T.c("outer"), T.c("main")]
            #expect(try T.matches(["fun:malloc", "fun:inner", "fun:outer"], stack))
            #expect(try !T.matches(["fun:malloc", "fun:outer"], stack))
            #expect(try T.matches(["fun:malloc", "...", "fun:outer"], stack))
        }

        @Test func srcMatchesFileNameAndLine() throws {
            let stack = [T.c("malloc", T.heapgateLib), T.c("f", file: "/src/proj/foo.c", line: 12), T.c("main")]
            #expect(try T.matches(["fun:malloc", "src:foo.c"], stack))
            #expect(try T.matches(["fun:malloc", "src:foo.c:12"], stack))
            #expect(try T.matches(["fun:malloc", "src:f??.c:12"], stack))
            #expect(try T.matches(["fun:malloc", "src:*/proj/foo.c"], stack))
            #expect(try !T.matches(["fun:malloc", "src:foo.c:13"], stack))
            #expect(try !T.matches(["fun:malloc", "src:bar.c"], stack))
            #expect(try !T.matches(["src:*"], stack), "frame 0 has no file")
        }

        @Test func frameZeroIsMemchecksPreloadObject() throws {
            let stack = [T.c("malloc", T.heapgateLib), T.c("foo"), T.c("main")]
            #expect(try T.matches(["obj:*vgpreload_memcheck*", "fun:foo"], stack))
            #expect(try T.matches(["obj:/usr/libexec/valgrind/vgpreload_memcheck-*-linux.so", "fun:foo"], stack))
            #expect(try T.matches(["obj:*/libheapgate.so", "fun:foo"], stack))
            // Only heapgate's allocator stands for memcheck's: not a malloc in some other object.
            let other = [T.c("malloc", T.libc), T.c("foo"), T.c("main")]
            #expect(try !T.matches(["obj:*vgpreload_memcheck*", "fun:foo"], other))
            #expect(try !T.matches(["fun:foo", "obj:*vgpreload_memcheck*"], stack), "frame 0 only")
        }

        @Test func memalignAliases() throws {
            let stack = [T.c("aligned_alloc", T.heapgateLib), T.c("foo")]
            #expect(try T.matches(["fun:memalign", "fun:foo"], stack))
            #expect(try T.matches(["fun:aligned_alloc", "fun:foo"], stack))
        }

        /// memcheck's realloc takes a null pointer on to its malloc, and it does not replace
        /// reallocarray (glibc's calls its realloc): frame 0 is `malloc` or `realloc` there.
        @Test func reallocAliases() throws {
            let grown = [T.c("realloc", T.heapgateLib), T.c("foo")]
            #expect(try T.matches(["fun:malloc", "fun:foo"], grown))
            #expect(try T.matches(["fun:realloc", "fun:foo"], grown))
            let array = [T.c("reallocarray", T.heapgateLib), T.c("foo")]
            #expect(try T.matches(["fun:malloc", "fun:foo"], array))
            #expect(try T.matches(["fun:realloc", "fun:foo"], array))
            #expect(try !T.matches(["fun:calloc", "fun:foo"], array))
            // Only heapgate's entry points: a realloc of some other object is itself.
            #expect(try !T.matches(["fun:malloc", "fun:foo"], [T.c("realloc", T.libc), T.c("foo")]))
        }

        /// memcheck's unwinder goes on below a stack's first frame (into `0x1: ???` under
        /// ld.so's `_dl_start_user`) and its --gen-suppressions writes those frames `obj:*`.
        @Test func wildcardLinesMatchPastTheEndOfTheStack() throws {
            #expect(try T.matches(["fun:malloc", "fun:helper", "fun:work", "fun:main", "obj:*", "obj:*"], Self.stack))
            #expect(try T.matches(["fun:malloc", "...", "fun:main", "fun:*", "..."], Self.stack))
            #expect(try !T.matches(["fun:malloc", "fun:helper", "fun:work", "fun:main", "obj:*", "fun:more"], Self.stack))
            #expect(try !T.matches(["fun:malloc", "fun:helper", "fun:work", "fun:main", "obj:*/lib*"], Self.stack))
            #expect(try !T.matches(["fun:malloc", "fun:helper", "fun:work", "fun:main", "src:*"], Self.stack))
        }

        /// memcheck refuses clone3, so glibc starts its threads with clone: a thread's first
        /// frame is `clone` in its suppressions.
        @Test func threadsStartInCloneUnderMemcheck() throws {
            let stack = [T.c("malloc", T.heapgateLib), T.c("thread_leak"), T.c("worker"), T.c("start_thread", T.libc),
                         T.c("clone3", T.libc)]
            #expect(try T.matches(["fun:malloc", "fun:thread_leak", "fun:worker", "fun:start_thread", "fun:clone"], stack))
            #expect(try T.matches(["fun:malloc", "fun:thread_leak", "fun:worker", "fun:start_thread", "fun:clone3"], stack))
            #expect(try !T.matches(["fun:malloc", "fun:clone"], [T.c("malloc", T.heapgateLib), T.c("clone2")]))
        }

        /// memcheck names an inlined frame by the function's plain DW_AT_name.
        @Test func inlinedFramesByTheirPlainName() throws {
            var inlined = T.frame("_ZNSt6vectorIiSaIiEE9push_backERKi", "std::vector<int>::push_back(int const&)")
            inlined.inlinedName = "push_back"
            let stack = [T.c("malloc", T.heapgateLib), inlined, T.c("main")]
            #expect(try T.matches(["fun:malloc", "fun:push_back", "fun:main"], stack))
            #expect(try T.matches(["fun:malloc", "fun:_ZNSt6vector*push_back*", "fun:main"], stack))
            #expect(valgrindSuppression(for: stack, kind: .definite).contains("   fun:push_back\n"))
        }

        @Test func cxxOperatorNewAsMemcheckSeesIt() throws {
            // heapgate: malloc <- operator new (libstdc++) <- make_widget; memcheck: operator new <- make_widget.
            let widget = [T.c("malloc", T.heapgateLib), T.frame("_Znwm", "operator new(unsigned long)", T.libstdcxx),
                          T.frame("_Z11make_widgetv", "make_widget()"), T.c("main")]
            #expect(try T.matches(["fun:_Znwm", "fun:_Z11make_widgetv", "fun:main"], widget))
            #expect(try T.matches(["obj:*vgpreload_memcheck*", "fun:_Z11make_widgetv"], widget))
            #expect(try T.matches(["fun:malloc", "fun:_Znwm", "fun:_Z11make_widgetv"], widget), "heapgate's own view")
            #expect(try T.matches(["fun:malloc", "obj:*/libstdc++.so*", "fun:_Z11make_widgetv"], widget))
            #expect(try !T.matches(["fun:_Z11make_widgetv"], widget))
            // operator new[] tail-calls operator new, so heapgate sees _Znwm where memcheck says _Znam.
            let array = [T.c("malloc", T.heapgateLib), T.frame("_Znwm", "operator new(unsigned long)", T.libstdcxx),
                         T.frame("_Z10make_arrayv", "make_array()"), T.c("main")]
            #expect(try T.matches(["fun:_Znam", "fun:_Z10make_arrayv", "fun:main"], array))
            #expect(try !T.matches(["fun:_Znam", "fun:_Z11make_widgetv"], array))
        }

        @Test func belowMain() throws {
            let stack = [T.c("malloc", T.heapgateLib), T.c("main"), T.c("__libc_start_call_main", T.libc),
                         T.c("__libc_start_main@@GLIBC_2.34", T.libc), T.c("_start")]
            #expect(try T.matches(["fun:malloc", "fun:main", "fun:(below main)", "fun:(below main)"], stack))
            #expect(try T.matches(["fun:malloc", "fun:main", "fun:__libc_start_call_main"], stack))
        }

        @Test func numCallersIgnoresDeeperLines() throws {
            var set = try SuppressionTests.parse(T.leakBlock(["fun:malloc", "fun:helper", "fun:other", "fun:main"]))
            #expect(set.firstMatch(frames: Self.stack, kind: .definite) == nil)
            set.numCallers = 2
            #expect(set.firstMatch(frames: Self.stack, kind: .definite) != nil)
        }

        @Test func firstMatchIsTheFirstInFileOrder() throws {
            let set = try SuppressionTests.parse(
                T.leakBlock(["fun:nothing"], name: "a") + T.leakBlock(["fun:malloc"], kinds: "reachable", name: "b")
                + T.leakBlock(["fun:malloc", "...", "fun:main"], name: "c") + T.leakBlock(["fun:malloc"], name: "d"))
            #expect(set.firstMatch(frames: Self.stack, kind: .definite)?.name == "c")
            #expect(set.firstMatch(frames: Self.stack, kind: .reachable)?.name == "b")
            #expect(set.firstMatch(frames: [], kind: .definite) == nil)
        }
    }

    @Suite struct LeakSanitizerMatching {
        typealias T = SuppressionTests
        static let stack = [
            T.c("malloc", T.heapgateLib),
            SuppressionFrame(linkageName: "_Z11make_widgetv", function: "make_widget()", object: "/opt/lib/libplugin.so",
                             file: "/src/plugin/widget.cpp", line: 9),
            T.c("main"),
        ]

        func matches(_ line: String, kind: LeakKind = .definite) throws -> Bool {
            try SuppressionTests.parse(line + "\n", format: .leakSanitizer).firstMatch(frames: Self.stack, kind: kind) != nil
        }

        @Test func substringOfFunctionModuleOrFile() throws {
            #expect(try matches("leak:make_widget"))
            #expect(try matches("leak:widget()"))
            #expect(try matches("leak:libplugin.so"))
            #expect(try matches("leak:/opt/lib/"))
            #expect(try matches("leak:widget.cpp"))
            #expect(try matches("leak:malloc"), "the allocator frame is a frame too, as in LSan")
            #expect(try !matches("leak:_Z11make"), "the demangled name, not the mangled one")
            #expect(try !matches("leak:nothing_here"))
        }

        @Test func wildcardsAndAnchors() throws {
            #expect(try matches("leak:make*()"))
            #expect(try matches("leak:^make_widget"))
            #expect(try !matches("leak:^widget"))
            #expect(try matches("leak:widget()$"))
            #expect(try !matches("leak:make_widget$"))
            #expect(try matches("leak:^main$"))
            #expect(try !matches("leak:make_widget?"), "? is not a wildcard for LSan")
        }

        @Test func everyKindAndOnlyLeakLines() throws {
            for kind in LeakKind.allCases { #expect(try matches("leak:make_widget", kind: kind)) }
            #expect(try !matches("race:make_widget"))
        }
    }
}

// MARK: - Generation

extension SuppressionTests {
    @Suite struct Generation {
        typealias T = SuppressionTests

        @Test func valgrindLayout() {
            let stack = [T.c("malloc", T.heapgateLib), T.c("leak_name"), T.c("main")]
            #expect(valgrindSuppression(for: stack, kind: .definite) == """
            {
               <insert_a_suppression_name_here>
               Memcheck:Leak
               match-leak-kinds: definite
               fun:malloc
               fun:leak_name
               fun:main
            }
            """)
        }

        @Test func cxxStackIsPrintedAsMemcheckSeesIt() {
            let stack = [T.c("malloc", T.heapgateLib), T.frame("_Znwm", "operator new(unsigned long)", T.libstdcxx),
                         T.frame("_Z11make_widgetv", "make_widget()"), T.c("main")]
            #expect(valgrindSuppression(for: stack, kind: .possible, name: "widget") == """
            {
               widget
               Memcheck:Leak
               match-leak-kinds: possible
               fun:_Znwm
               fun:_Z11make_widgetv
               fun:main
            }
            """)
        }

        @Test func unknownFramesBelowMainAndTheFrameLimit() {
            // memcheck's stack (and suppression) ends at main, as `valgrind --gen-suppressions=all`
            // prints it; without main, at the first of glibc's frames under it and _start.
            let startUp = [T.c("__libc_start_call_main", T.libc), T.c("__libc_start_main_impl", T.libc), SuppressionFrame(object: T.app)]
            let stack = [T.c("malloc", T.heapgateLib), SuppressionFrame(object: T.libstdcxx), T.unknown, T.c("main")] + startUp
            let lines = valgrindSuppression(for: stack, kind: .reachable).split(separator: "\n").map(String.init)
            #expect(lines.suffix(5) == ["   fun:malloc", "   obj:" + T.libstdcxx, "   obj:*", "   fun:main", "}"])
            let withoutMain = [T.c("malloc", T.heapgateLib), T.c("constructor")] + startUp
            let belowMain = valgrindSuppression(for: withoutMain, kind: .reachable).split(separator: "\n").map(String.init)
            #expect(belowMain.suffix(4) == ["   fun:malloc", "   fun:constructor", "   fun:(below main)", "}"])
            let deep = [T.c("malloc", T.heapgateLib)] + (1..<40).map { T.c("f\($0)") }
            let frameLines = valgrindSuppression(for: deep, kind: .definite).split(separator: "\n").filter { $0.hasPrefix("   fun:") }
            #expect(frameLines.count == 24)
            #expect(valgrindSuppression(for: deep, kind: .definite, maxFrames: 5).split(separator: "\n").count == 4 + 5 + 1)
        }

        static let stacks: [[SuppressionFrame]] = [
            [T.c("malloc", T.heapgateLib), T.c("leak_name"), T.c("main")],
            [T.c("calloc", T.heapgateLib), T.c("calloc", "/lib64/ld-linux-x86-64.so.2"), T.c("allocate_dtv", "/lib64/ld-linux-x86-64.so.2"),
             T.c("pthread_create@GLIBC_2.2.5", T.libc), T.c("main")],
            [T.c("malloc", T.heapgateLib), T.frame("_Znwm", "operator new(unsigned long)", T.libstdcxx),
             T.frame("_Z11make_widgetv", "make_widget()"), T.c("main")],
            [T.c("malloc", T.heapgateLib), SuppressionFrame(object: T.libstdcxx), T.unknown, T.c("call_init"), T.c("_dl_init")],
            [T.c("malloc", T.heapgateLib), T.frame("$s4demo7PayloadCACycfC", "demo.Payload.__allocating_init() -> demo.Payload"),
             T.c("main"), T.c("__libc_start_call_main", T.libc)],
            [SuppressionFrame(function: "operator new(unsigned long)", object: T.heapgateLib), T.c("x * y?")],
            (0..<30).map { T.c("f\($0)") },
            [],
        ]

        @Test(arguments: stacks)
        func generatedSuppressionsParseAndMatchTheirStack(stack: [SuppressionFrame]) throws {
            for kind in LeakKind.allCases {
                let text = valgrindSuppression(for: stack, kind: kind, name: "generated")
                let set = try SuppressionTests.parse(text)
                #expect(set.suppressions.count == 1)
                #expect(set.suppressions.first?.leakKinds == [kind])
                if !stack.isEmpty {
                    #expect(set.firstMatch(frames: stack, kind: kind)?.name == "generated", "\(text)")
                }
                for other in LeakKind.allCases where other != kind {
                    #expect(set.firstMatch(frames: stack, kind: other) == nil)
                }
            }
        }

        @Test func oddNamesStillGiveAParsableBlock() throws {
            let stack = [T.c("malloc", T.heapgateLib), T.c("f")]
            for name in ["", "  ", "two\nlines", "}", "{", "# not a comment"] {
                let set = try SuppressionTests.parse(valgrindSuppression(for: stack, kind: .definite, name: name))
                #expect(set.firstMatch(frames: stack, kind: .definite) != nil, "name \(name.debugDescription)")
            }
        }
    }
}

// MARK: - Default suppressions

extension SuppressionTests {
    @Suite struct Defaults {
        typealias T = SuppressionTests
        static let ldso = "/lib64/ld-linux-x86-64.so.2"
        static let swiftCore = "/opt/swift/usr/lib/swift/linux/libswiftCore.so"

        @Test func defaultListParses() throws {
            let set = try SuppressionSet.parse(DefaultSuppressions.text, file: DefaultSuppressions.file, format: .valgrind)
            #expect(set.suppressions.count >= 20)
            #expect(DefaultSuppressions.set == set)
            #expect(set.suppressions.allSatisfy { $0.isLeakSuppression })
            #expect(Set(set.suppressions.map(\.name)).count == set.suppressions.count, "names are unique")
            #expect(set.suppressions.allSatisfy { $0.name.hasPrefix("heapgate-") })
            #expect(set.suppressions.allSatisfy { !$0.leakKinds.isEmpty })
        }

        @Test func everyEntryIsExplainedByAComment() {
            // Each block is preceded by a comment, or directly follows another block (a variant).
            let lines = DefaultSuppressions.text.split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            for (index, line) in lines.enumerated() where line == "{" {
                let previous = index > 0 ? lines[index - 1] : ""
                #expect(previous.hasPrefix("#") || previous == "}", "block at line \(index + 1)")
            }
        }

        static func suppressed(_ frames: [SuppressionFrame], _ kind: LeakKind) -> String? {
            DefaultSuppressions.set.firstMatch(frames: frames, kind: kind)?.name
        }

        /// Stacks seen with glibc 2.36, GCC 12, Swift 6.3.1 and rustc 1.95 (the fixtures).
        static let runtimeStacks: [(String, [SuppressionFrame], LeakKind)] = [
            ("heapgate-glibc-stdio-buffer",
             [T.c("malloc", T.heapgateLib), T.c("__GI__IO_file_doallocate", T.libc), T.c("__GI__IO_doallocbuf", T.libc),
              T.c("_IO_file_overflow@@GLIBC_2.2.5", T.libc), T.c("printf", T.libc), T.c("main")], .reachable),
            ("heapgate-glibc-thread-dtv",
             [T.c("calloc", T.heapgateLib), T.c("calloc", ldso), T.c("allocate_dtv", ldso), T.c("__GI__dl_allocate_tls", ldso),
              T.c("allocate_stack", T.libc), T.c("pthread_create@GLIBC_2.2.5", T.libc), T.c("main")], .definite),
            ("heapgate-ldso-dl-find-object",
             [T.c("malloc", T.heapgateLib), T.c("malloc", ldso), T.c("_dlfo_mappings_segment_allocate", ldso),
              T.c("_dl_find_object_update_1", ldso), T.c("_dl_find_object_update", ldso), T.c("dl_open_worker_begin", ldso),
              T.c("__GI__dl_catch_exception", T.libc), T.c("main")], .possible),
            ("heapgate-glibc-locale-data",
             [T.c("realloc", T.heapgateLib), T.c("read_alias_file", T.libc), T.c("_nl_expand_alias", T.libc),
              T.c("_nl_find_locale", T.libc), T.c("__GI_setlocale", T.libc), T.c("main")], .reachable),
            ("heapgate-glibc-setlocale-internal-name",
             [T.c("malloc", T.heapgateLib), T.c("new_composite_name", T.libc), T.c("__GI_setlocale", T.libc), T.c("main")], .reachable),
            ("heapgate-libstdc++-emergency-eh-pool",
             [T.c("malloc", T.heapgateLib), SuppressionFrame(object: T.libstdcxx), T.c("call_init", ldso), T.c("call_init", ldso),
              T.c("_dl_init", ldso), T.c("_dl_start_user", ldso)], .reachable),
            ("heapgate-swift-concurrent-hash-map",
             [T.c("calloc", T.heapgateLib),
              T.frame("_ZN5swift25ConcurrentReadableHashMapINS_21HashMapElementWrapperINS_17GenericCacheEntryEEENS_5MutexEE6resizeENS5_12IndexStorageEhPS3_", "…resize", swiftCore),
              T.frame("$s11clean_swift7useHeapSiyF", "clean_swift.useHeap() -> Swift.Int"), T.c("main")], .possible),
            ("heapgate-swift-lazy-cache",
             [T.c("malloc", T.heapgateLib), T.frame("_Znwm", "operator new(unsigned long)", T.libstdcxx),
              T.frame("_ZN5swift4LazyINS_13MetadataCacheIN12_GLOBAL__N_122WitnessTableCacheEntryELt16EEEE19defaultInitCallbackEPv", "…", swiftCore),
              T.frame("_ZN5swift14threading_impl9once_slowERNS0_6once_tEPFvPvES3_", "…", swiftCore),
              T.c("swift_getWitnessTable", swiftCore), T.c("main")], .reachable),
            ("heapgate-swift-witness-table",
             [T.c("malloc", T.heapgateLib), T.c("swift_getWitnessTable", swiftCore), T.c("main")], .reachable),
            ("heapgate-swift-runtime-paths",
             [T.c("malloc", T.heapgateLib), T.c("__GI___strdup", T.libc),
              T.frame("_ZN12_GLOBAL__N_122_swift_initRuntimePathEPv", "…", swiftCore),
              T.frame("_ZN5swift14threading_impl9once_slowERNS0_6once_tEPFvPvES3_", "…", swiftCore),
              T.c("swift_copyAuxiliaryExecutablePath", swiftCore), T.c("_GLOBAL__sub_I_Backtrace.cpp", swiftCore)], .reachable),
            ("heapgate-swift-print-box",
             [T.c("malloc", T.heapgateLib), T.c("swift_allocBox", swiftCore),
              T.c("__swift_allocate_boxed_opaque_existential_0Tm", swiftCore),
              T.frame("$ss15_print_unlockedyyx_q_zts16TextOutputStreamR_r0_lF", "…", swiftCore), T.c("main")], .reachable),
            ("heapgate-rust-std-thread-info",
             [T.c("malloc", T.heapgateLib), T.frame("_RNvNtCslNYArtu3iFV_5alloc5alloc5alloc", "alloc::alloc::alloc"),
              T.frame("_RNvNtNtNtNtNtCsjrHSEGnQ3l9_3std3sys3pal4unix14stack_overflow11thread_info16set_current_info", "…"),
              T.frame("_RNvNtCsjrHSEGnQ3l9_3std2rt19lang_start_internal", "std::rt::lang_start_internal"), T.c("main")], .reachable),
            ("heapgate-rust-std-stdout-buffer",
             [T.c("malloc", T.heapgateLib),
              T.frame("_RNvMNtNtNtCsjrHSEGnQ3l9_3std2io8buffered9bufwriterINtB2_9BufWriterNtNtB6_5stdio9StdoutRawE13with_capacityB8_", "…"),
              T.frame("_RNvNtNtCsjrHSEGnQ3l9_3std2io5stdio6__print", "std::io::stdio::_print"),
              T.frame("_ZN1r4main17h086b0cfd890a8ea9E", "r::main"), T.c("main")], .reachable),
        ]

        @Test(arguments: runtimeStacks)
        func runtimeBlocksAreSuppressed(name: String, stack: [SuppressionFrame], kind: LeakKind) {
            #expect(Self.suppressed(stack, kind) == name)
        }

        /// The programs' own leaks from the fixtures, and look-alikes near runtime code.
        static let programStacks: [(String, [SuppressionFrame])] = [
            ("C leak", [T.c("malloc", T.heapgateLib), T.c("thread_leak"), T.c("worker"), T.c("start_thread", T.libc)]),
            ("C++ leak", [T.c("malloc", T.heapgateLib), T.frame("_Znwm", "operator new(unsigned long)", T.libstdcxx),
                          T.frame("_Z11make_widgetv", "make_widget()"), T.c("main")]),
            ("C++ global constructor", [T.c("malloc", T.heapgateLib), T.frame("_Znwm", "operator new(unsigned long)", T.libstdcxx),
                                        T.c("_GLOBAL__sub_I_app.cpp"), T.c("call_init", ldso), T.c("_dl_init", ldso)]),
            ("plugin leak", [T.c("malloc", T.heapgateLib), T.c("plugin_leak", "/opt/libplugin.so"), T.c("main")]),
            ("Swift object", [T.c("malloc", T.heapgateLib), T.c("swift_slowAlloc", swiftCore), T.c("swift_allocObject", swiftCore),
                              T.frame("$s10leak_swift7PayloadCyACSi_SitcfC", "…"), T.frame("$s10leak_swift0A7PayloadyyF", "…"),
                              T.c("main")]),
            ("Swift global initialized with swift_once",
             [T.c("malloc", T.heapgateLib), T.c("swift_slowAlloc", swiftCore), T.c("swift_allocObject", swiftCore),
              T.frame("$s3app5cacheSDySiSSGvpfiyyXEfU_", "…"),
              T.frame("_ZN5swift14threading_impl9once_slowERNS0_6once_tEPFvPvES3_", "…", swiftCore),
              T.c("swift_once", swiftCore), T.c("main")]),
            ("Rust leak", [T.c("malloc", T.heapgateLib), T.frame("_RNvNtCslNYArtu3iFV_5alloc5alloc5alloc", "alloc::alloc::alloc"),
                           T.frame("_ZN9leak_rust8leak_box17h1f9e51213e45b374E", "leak_rust::leak_box"),
                           T.frame("_ZN9leak_rust4main17h0ad18d7a2b5ec41dE", "leak_rust::main"), T.c("main")]),
            ("newlocale result", [T.c("malloc", T.heapgateLib), T.c("__newlocale", T.libc), T.c("main")]),
            ("fopen's FILE", [T.c("malloc", T.heapgateLib), T.c("__fopen_internal", T.libc), T.c("main")]),
            ("strdup", [T.c("malloc", T.heapgateLib), T.c("__GI___strdup", T.libc), T.c("main")]),
            ("program's allocation in a dlopen'ed constructor",
             [T.c("malloc", T.heapgateLib), T.c("plugin_init", "/opt/libplugin.so"), T.c("call_init", ldso), T.c("_dl_init", ldso),
              T.c("dl_open_worker", ldso), T.c("_dl_open", ldso), T.c("main")]),
        ]

        @Test(arguments: programStacks)
        func programLeaksAreNotSuppressed(label: String, stack: [SuppressionFrame]) {
            for kind in LeakKind.allCases {
                #expect(Self.suppressed(stack, kind) == nil, "\(label), \(kind)")
            }
        }

        @Test func swiftAndLdsoEntriesKeepDefiniteLeaks() {
            let witness = [T.c("malloc", T.heapgateLib), T.c("swift_getWitnessTable", Self.swiftCore), T.c("main")]
            #expect(Self.suppressed(witness, .definite) == nil)
            let ldsoBlock = [T.c("malloc", T.heapgateLib), T.c("_dl_new_object", Self.ldso), T.c("main")]
            #expect(Self.suppressed(ldsoBlock, .reachable) == "heapgate-ldso-internal")
            #expect(Self.suppressed(ldsoBlock, .definite) == nil)
        }
    }
}

// MARK: - Fixtures

extension SuppressionTests {
    /// Runs the fixtures with the shim and checks the default list against the real stacks: every
    /// block in use at exit is suppressed except the program's own leaks.
    @Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: Harness.fixture("clean_c")), "fixtures not built (make fixtures)"))
    struct DefaultsOnFixtures {
        /// Functions whose blocks are the fixtures' own (EXPECTED.md).
        static let programFunctions = ["thread_leak", "plugin_leak", "make_widget()", "make_array()",
                                       "leak_swift.leakPayload() -> ()", "leak_rust::leak_box", "leak_rust::leak_string",
                                       "leak_name", "leak_twice", "leak_calloc"]

        struct Block {
            var frames: [SuppressionFrame]
            /// Nil when the trace has no leak classification (a shim without the exit-time scan).
            var kind: LeakKind?
            var size: UInt64
            var isProgram: Bool { frames.contains { DefaultsOnFixtures.programFunctions.contains($0.function ?? "") } }
        }

        static func blocks(_ command: [String]) throws -> [Block] {
            try Harness.withTemporaryDirectory { directory in
                _ = try Harness.trace(command, into: directory)
                let heaps = try TraceSet.load(files: Harness.traceFiles(in: directory))
                let symbolizer = Symbolizer()
                var blocks: [Block] = []
                for heap in heaps {
                    for block in heap.exitBlocks?.map(\.block) ?? Array(heap.blocksInUse.values) {
                        let frames = (heap.stacks[block.stack] ?? []).flatMap { address -> [SuppressionFrame] in
                            guard let id = address.moduleID, let module = heap.modules[id] else { return [SuppressionFrame()] }
                            let image = ModuleImage(path: module.path, base: module.base)
                            return symbolizer.symbolize(address: address.address &- 1, in: image)
                                .map { SuppressionFrame($0, object: module.path) }
                        }
                        blocks.append(Block(frames: frames, kind: block.kind, size: block.size))
                    }
                }
                return blocks
            }
        }

        static func describe(_ block: Block) -> String {
            "\(block.size) bytes \(block.kind.map { "\($0)" } ?? "unclassified"):\n" + block.frames.prefix(16).map {
                "   \($0.linkageName ?? $0.function ?? "???") (\($0.object.map { fileName(of: $0) } ?? "?"))"
            }.joined(separator: "\n")
        }

        @Test(arguments: [
            ["clean_c"], ["clean_cpp"], ["clean_rust"], ["clean_swift"], ["prints_a_lot"], ["threads"], ["dlopen_leak"],
            ["leak_cpp"], ["leak_rust"], ["leak_swift"], ["leak_basic"],
        ])
        func onlyTheProgramsBlocksRemain(command: [String]) throws {
            let blocks = try Self.blocks([Harness.fixture(command[0])] + command.dropFirst())
            // Not vacuous: every fixture but clean_c ends with blocks in use, the leak fixtures with their own.
            #expect(blocks.isEmpty == (command[0] == "clean_c"))
            let leaks = ["threads", "dlopen_leak", "leak_cpp", "leak_rust", "leak_swift", "leak_basic"].contains(command[0])
            #expect(blocks.contains { $0.isProgram } == leaks)
            for block in blocks {
                if block.isProgram {
                    // Unclassified: whatever kind it would get.
                    for kind in block.kind.map({ [$0] }) ?? LeakKind.allCases {
                        let match = DefaultSuppressions.set.firstMatch(frames: block.frames, kind: kind)
                        #expect(match == nil, "program's block suppressed by \(match?.name ?? ""): \(Self.describe(block))")
                    }
                } else {
                    // Unclassified: as a block still reachable, which every entry covers.
                    let match = DefaultSuppressions.set.firstMatch(frames: block.frames, kind: block.kind ?? .reachable)
                    #expect(match != nil, "runtime block not suppressed: \(Self.describe(block))")
                }
            }
        }
    }
}

// MARK: - Linkage names from the symbolizer

extension SuppressionTests {
    /// `SourceFrame.linkageName` is the raw name valgrind's `fun:` lines are matched against.
    @Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: Harness.fixture("leak_rust"))
                        && FileManager.default.isExecutableFile(atPath: "/usr/bin/nm"), "fixtures or nm missing"))
    struct LinkageNames {
        /// The symbol `name` (or, for a name ending in `*`, the first starting with the rest) in
        /// `binary`, and its address (an ELF virtual address), from `nm`.
        static func symbol(_ name: String, in binary: String) throws -> (name: String, address: UInt64)? {
            let outcome = try Harness.execute("/usr/bin/nm", [binary])
            for line in outcome.stdoutText.split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.count == 3, let address = UInt64(fields[0], radix: 16) else { continue }
                let symbol = String(fields[2])
                if name.hasSuffix("*") ? symbol.hasPrefix(name.dropLast()) : symbol == name { return (symbol, address) }
            }
            return nil
        }

        @Test(arguments: [
            ("leak_basic", "leak_name", "leak_name"),
            ("leak_cpp", "_Z11make_widgetv", "make_widget()"),
            ("leak_swift", "$s10leak_swift0A7PayloadyyF", "leak_swift.leakPayload() -> ()"),
            ("leak_rust", "_ZN9leak_rust8leak_box17h*", "leak_rust::leak_box"),
        ])
        func outOfLineFunctionHasItsSymbol(fixture: String, symbol: String, function: String) throws {
            let binary = Harness.fixture(fixture)
            let found = try #require(try Self.symbol(symbol, in: binary))
            // A few bytes into the function; the executable mapped at base 0, so addresses are ELF addresses.
            let frames = Symbolizer().symbolize(address: found.address + 4, in: ModuleImage(path: binary, base: 0))
            #expect(frames.last?.linkageName == found.name)
            #expect(frames.last?.function == function)
        }
    }

    /// Frames carry the names memcheck gives them, so that suppressions written for memcheck
    /// (by hand or by its --gen-suppressions) match (valgrind_names.c; the same file under
    /// memcheck: `ValgrindComparisonTests.suppressionsValgrindWroteApply`).
    @Suite struct MemcheckNames {
        static let program = Harness.fixture("valgrind_names")

        /// glibc's strdup has three names in libc6-dbg's symbol table (strdup, __strdup,
        /// __GI___strdup) and two in libc's own; memcheck shows the shortest. A library loaded
        /// through its soname link is shown by its file, as the kernel maps it.
        @Test func framesAndObjectsAreMemchecks() throws {
            let (outcome, report) = try Harness.run([Self.program], flags: ["--default-suppressions=no"])
            #expect(outcome.status == 0)
            let process = try #require(report.processes.first)
            let copy = try #require(process.records(allocatedIn: "lose_copy").first)
            #expect(copy.bytes == 17 && copy.kind == "definite")
            #expect(copy.frames.map(\.function) == ["malloc", "strdup", "lose_copy", "main"])
            let buffer = try #require(process.records(allocatedIn: "lose_library_buffer").first)
            #expect(buffer.bytes == 40 && buffer.kind == "definite")
            #expect(buffer.frames.map(\.function) == ["malloc", nil, "versioned_buffer", "lose_library_buffer", "main"])
            #expect(buffer.frames[1].module == Harness.fixture("libversioned.so.1.2.3"))
            #expect(buffer.frames[2].module == Harness.fixture("libversioned.so.1.2.3"))
            let grown = try #require(process.records(allocatedIn: "lose_grown").first)
            #expect(grown.bytes == 24 && grown.frames.first?.function == "realloc")
        }

        /// What the loader called the library (its soname link) and memcheck's names for frame 0
        /// match as well: `obj:` a path heapgate showed before it resolved links, `fun:malloc`
        /// for a block of realloc(NULL, n), `fun:memalign` above `fun:posix_memalign` for a
        /// block of posix_memalign (memcheck 3.19's calls its memalign).
        @Test func loadersPathAndMemchecksFrameZeroMatch() throws {
            let file = Harness.temporaryPath("names.supp")
            defer { Harness.removeTemporary(file) }
            try """
            {
               through-the-soname-link
               Memcheck:Leak
               fun:malloc
               obj:*/libversioned.so.1
               fun:versioned_buffer
            }
            {
               realloc-of-null-as-memcheck-names-it
               Memcheck:Leak
               fun:malloc
               fun:lose_grown
            }
            {
               posix-memalign-as-memcheck-names-it
               Memcheck:Leak
               fun:memalign
               fun:posix_memalign
               fun:lose_aligned
            }
            """.write(toFile: file, atomically: true, encoding: .utf8)
            let (_, report) = try Harness.run([Self.program], flags: ["--default-suppressions=no", "--suppressions=\(file)"])
            let process = try #require(report.processes.first)
            #expect(process.records(allocatedIn: "lose_library_buffer").first?.suppressedBy == "through-the-soname-link")
            #expect(process.records(allocatedIn: "lose_grown").first?.suppressedBy == "realloc-of-null-as-memcheck-names-it")
            #expect(process.records(allocatedIn: "lose_aligned").first?.suppressedBy == "posix-memalign-as-memcheck-names-it")
            #expect(process.leaks?.definite == Report.Amount(bytes: 17, blocks: 1))
        }

        /// `--gen-suppressions` writes memcheck's frames for a posix_memalign block, as memcheck
        /// does, and the block it writes suppresses that block when read back.
        @Test func posixMemalignSuppressionIsMemchecks() throws {
            let (outcome, _) = try Harness.run([Self.program], flags: ["--default-suppressions=no", "--gen-suppressions=all"])
            let block = try #require(ValgrindComparisonTests.generatedBlocks(outcome.stderr)
                .first { $0.contains("fun:lose_aligned") })
            #expect(block == """
                {
                   <insert_a_suppression_name_here>
                   Memcheck:Leak
                   match-leak-kinds: definite
                   fun:memalign
                   fun:posix_memalign
                   fun:lose_aligned
                   fun:main
                }
                """)
            let file = Harness.temporaryPath("aligned.supp")
            defer { Harness.removeTemporary(file) }
            try block.write(toFile: file, atomically: true, encoding: .utf8)
            let (_, report) = try Harness.run([Self.program], flags: ["--default-suppressions=no", "--suppressions=\(file)"])
            let process = try #require(report.processes.first)
            #expect(process.leaks?.suppressed == Report.Amount(bytes: 48, blocks: 1))
            #expect(process.leaks?.definite == Report.Amount(bytes: 81, blocks: 3))
        }
    }
}
