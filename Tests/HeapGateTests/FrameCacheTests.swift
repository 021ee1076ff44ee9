import Foundation
import Testing
@testable import HeapGate

/// Frames kept across runs (`FrameCache`): a later symbolizer gives the same frames without
/// reading the DWARF again; an answer made without DWARF gives way once a debug file appears;
/// another heapgate build's file is ignored.
@Suite struct FrameCacheTests {
    @Test(.enabled(if: DebugInfoCacheTests.ready))
    func laterSymbolizerAnswersWithoutReadingDWARF() throws {
        try Harness.withTemporaryDirectory { directory in
            let cache = DebugInfoCache(directory: directory)
            let image = ModuleImage(path: DebugInfoCacheTests.libc, base: 0)
            let address = try DebugInfoCacheTests.mallocAddress()

            let first = Symbolizer(cache: cache)
            let expected = first.symbolize(address: address, in: image)
            #expect(first.debugFile(forFileAt: DebugInfoCacheTests.libc) != nil, "libc6-dbg is not installed")
            #expect(expected.last?.file?.hasSuffix("malloc/malloc.c") == true, "\(expected)")
            first.storeFrames()

            let second = Symbolizer(cache: cache)
            let again = second.symbolize(address: address, in: image)
            #expect(again == expected)
            #expect(again.map(\.linkageName) == expected.map(\.linkageName))
            // Answered from the cache: libc's debug file was never opened.
            #expect(second.debugFile(forFileAt: DebugInfoCacheTests.libc) == nil)

            // Another heapgate build does not trust these answers.
            let stranger = FrameCache(cache: cache, owner: "another-build")
            #expect(stranger.entry(buildID: try #require(Self.buildID(of: DebugInfoCacheTests.libc)), address: address) == nil)
        }
    }

    /// Kept while the program had no debug file: the symbol table's answer. Once its debug file
    /// is there, DWARF's answer (with file and line) replaces it.
    @Test(.enabled(if: LocalDebugInfoSearchTests.ready))
    func symbolTableAnswerGivesWayToDWARF() throws {
        try Harness.withTemporaryDirectory { directory in
            let build = directory + "/build"
            try FileManager.default.createDirectory(atPath: build, withIntermediateDirectories: true)
            let debug = try LocalDebugInfoSearchTests.build(in: build, buildID: true)
            try FileManager.default.moveItem(atPath: debug, toPath: directory + "/kept.debug")
            let cache = DebugInfoCache(directory: directory + "/cache")
            let program = build + "/prog"

            let symbols = try Harness.execute("/usr/bin/nm", [program]).stdoutText
            let line = try #require(symbols.split(separator: "\n").first { $0.hasSuffix(" T helper") })
            let address = try #require(UInt64(line.split(separator: " ")[0], radix: 16))
            let image = ModuleImage(path: program, base: 0)

            let without = Symbolizer(cache: cache)
            let plain = without.symbolize(address: address, in: image)
            #expect(plain.last?.function == "helper" && plain.last?.file == nil, "\(plain)")
            without.storeFrames()
            #expect(Symbolizer(cache: cache).symbolize(address: address, in: image) == plain)

            try FileManager.default.moveItem(atPath: directory + "/kept.debug", toPath: debug)
            let with = Symbolizer(cache: cache).symbolize(address: address, in: image)
            #expect(with.last?.function == "helper", "\(with)")
            #expect(with.last?.file?.hasSuffix("prog.c") == true && with.last?.line == 2, "\(with)")
        }
    }

    /// The shim's entry points are one frame each in a report, whatever it inlined into them.
    /// The cache is keyed by build id, and the same shim may first have been seen under
    /// another name (a renamed copy, preloaded by hand): what it kept then still gives one
    /// frame for libheapgate.so.
    @Test func shimFramesStayOneFrameWhenTheCacheAnswers() throws {
        try Harness.withTemporaryDirectory { directory in
            let renamed = directory + "/renamed.so"
            try FileManager.default.copyItem(atPath: Harness.shim, toPath: renamed)
            let symbols = try Harness.execute("/usr/bin/nm", ["-S", Harness.shim]).stdoutText
            let line = try #require(symbols.split(separator: "\n").first { $0.hasSuffix(" T malloc") })
            let fields = line.split(separator: " ")
            let start = try #require(UInt64(fields[0], radix: 16)), size = try #require(UInt64(fields[1], radix: 16))
            let cache = DebugInfoCache(directory: directory + "/cache")

            // An address in malloc where the shim inlined its body: two frames or more.
            let first = Symbolizer(cache: cache)
            let image = ModuleImage(path: renamed, base: 0)
            let inlined = try #require((start..<start + size).first { first.symbolize(address: $0, in: image).count > 1 })
            first.storeFrames()

            let frames = Symbolizer(cache: cache).symbolize(address: inlined, in: ModuleImage(path: Harness.shim, base: 0))
            #expect(frames.map(\.function) == ["malloc"], "\(frames)")
        }
    }

    /// The directory keeps the most recently written modules' files.
    @Test func oldestModulesAreDropped() throws {
        try Harness.withTemporaryDirectory { directory in
            let frame = [SourceFrame(function: "f", file: "/a.c", line: 1, isInlined: false)]
            for module in 0..<5 {
                let cache = FrameCache(cache: DebugInfoCache(directory: directory), owner: "test", keptModules: 3)
                cache.keep(.init(frames: frame, fromDWARF: true), buildID: [UInt8(module)], address: 0x10)
                cache.store()
                // Older by a minute each, so the order does not hang on the clock's resolution.
                let path = directory + "/frames/" + hexString([UInt8(module)])
                let date = Date(timeIntervalSinceNow: Double(module - 10) * 60)
                try FileManager.default.setAttributes([.modificationDate: date], ofItemAtPath: path)
            }
            let left = try FileManager.default.contentsOfDirectory(atPath: directory + "/frames").sorted()
            #expect(left == ["02", "03", "04"])
            let reader = FrameCache(cache: DebugInfoCache(directory: directory), owner: "test")
            #expect(reader.entry(buildID: [4], address: 0x10)?.frames == frame)
        }
    }

    /// Names of frames under main (`symbolName`, which reads no DWARF) are kept too, as
    /// symbol-table answers: a later report takes them from the file instead of sorting the
    /// module's symbol table. Such an answer does not stand in for a full look-up, which
    /// still reads libc's DWARF.
    @Test(.enabled(if: DebugInfoCacheTests.ready))
    func namesUnderMainAreKept() throws {
        try Harness.withTemporaryDirectory { directory in
            let cache = DebugInfoCache(directory: directory)
            let image = ModuleImage(path: DebugInfoCacheTests.libc, base: 0)
            let address = try DebugInfoCacheTests.mallocAddress()

            let first = Symbolizer(cache: cache)
            let name = first.symbolName(address: address, in: image)
            let symbol = try #require(name.function) // malloc's, or one of its aliases (__libc_malloc)
            #expect(symbol.hasSuffix("malloc") && name.linkageName == symbol && name.file == nil, "\(name)")
            first.storeFrames()

            // What the file says is what the next symbolizer answers: change it to tell.
            let buildID = try #require(Self.buildID(of: DebugInfoCacheTests.libc))
            let path = directory + "/frames/" + hexString(buildID)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let line = String(address, radix: 16) + "\tS=\(symbol)\u{1F}=\(symbol)\u{1F}\u{1F}\u{1F}0\u{1F}\u{1F}\n"
            #expect(text.contains(line), "\(text.debugDescription)")
            try text.replacingOccurrences(of: line, with: String(address, radix: 16) + "\tS=kept\u{1F}=kept\u{1F}\u{1F}\u{1F}0\u{1F}\u{1F}\n")
                .write(toFile: path, atomically: true, encoding: .utf8)
            #expect(Symbolizer(cache: cache).symbolName(address: address, in: image).function == "kept")

            let full = Symbolizer(cache: cache).symbolize(address: address, in: image)
            #expect(full.last?.file?.hasSuffix("malloc/malloc.c") == true, "\(full)")
        }
    }

    /// Two runs that kept answers for one module: the second to store merges its answers
    /// with the file the first wrote (copied line for line, with names that are not ASCII),
    /// and skips lines it cannot read.
    @Test func storeMergesWithWhatAnotherRunWrote() throws {
        try Harness.withTemporaryDirectory { directory in
            let one = [SourceFrame(function: "café", file: "/src/ünï.swift", line: 3, isInlined: false, linkageName: "$s4caféyyF")]
            let two = [SourceFrame(function: "g", file: "/b.c", line: 9, isInlined: true), SourceFrame(function: "h", file: "/b.c", line: 2, isInlined: false)]
            let first = FrameCache(cache: DebugInfoCache(directory: directory), owner: "test")
            let second = FrameCache(cache: DebugInfoCache(directory: directory), owner: "test")
            #expect(second.entry(buildID: [7], address: 0x20) == nil) // read before the first stores
            first.keep(.init(frames: one, fromDWARF: true), buildID: [7], address: 0x10)
            first.store()
            let path = directory + "/frames/07"
            try (String(contentsOfFile: path, encoding: .utf8) + "not a line\nzz\tDbroken\n30\tXwhat\n")
                .write(toFile: path, atomically: true, encoding: .utf8)
            second.keep(.init(frames: two, fromDWARF: false), buildID: [7], address: 0x20)
            second.store()

            let reader = FrameCache(cache: DebugInfoCache(directory: directory), owner: "test")
            #expect(reader.entry(buildID: [7], address: 0x10) == .init(frames: one, fromDWARF: true))
            #expect(reader.entry(buildID: [7], address: 0x10)?.frames.map(\.linkageName) == one.map(\.linkageName))
            #expect(reader.entry(buildID: [7], address: 0x20) == .init(frames: two, fromDWARF: false))
            #expect(reader.entry(buildID: [7], address: 0x30) == nil)
        }
    }

    /// A file of the format before frames kept their recorded file name (version 1, by the
    /// same heapgate build) gives no answer: its frames would show base names.
    @Test func filesOfTheFormerFormatAreIgnored() throws {
        try Harness.withTemporaryDirectory { directory in
            try FileManager.default.createDirectory(atPath: directory + "/frames", withIntermediateDirectories: true)
            let field = "\u{1F}"
            let old = "heapgate-frames 1 test\n10\tD=f\(field)=f\(field)=/src/sub/a.c\(field)3\(field)0\(field)\n"
            try old.write(toFile: directory + "/frames/07", atomically: true, encoding: .utf8)
            let reader = FrameCache(cache: DebugInfoCache(directory: directory), owner: "test")
            #expect(reader.entry(buildID: [7], address: 0x10) == nil)
            #expect(!reader.knows(buildID: [7]))
        }
    }

    @Test func framesSurviveTheFileFormat() {
        let frames = [
            SourceFrame(function: "inner", file: "/src/sub/a.c", line: 7, isInlined: true, linkageName: "_Z5innerv",
                        fileName: "sub/a.c"),
            SourceFrame(function: nil, file: nil, line: nil, isInlined: false, linkageName: nil),
            SourceFrame(function: "", file: "=odd", line: 0, isInlined: false, linkageName: "x"),
            SourceFrame(function: "naïve", file: "/src/café.swift", line: 123_456, isInlined: true,
                        linkageName: "$s4main5naïveyyF", inlinedName: "naïve"),
        ]
        let encoded = try? #require(FrameCache.encode(frames))
        let decoded = encoded.flatMap { FrameCache.decode(Substring($0)) }
        #expect(decoded == frames)
        #expect(decoded?.map(\.linkageName) == frames.map(\.linkageName))
        #expect(decoded?.map(\.fileName) == frames.map(\.fileName))
        // Lines that are not the format read as nothing (the report then asks libdw).
        let field = "\u{1F}", frame = "\u{1E}"
        for broken in ["", "=f", "=f\(field)\(field)\(field)x7\(field)0\(field)",
                       "=f\(field)\(field)\(field)\(field)0\(field)\(field)\(field)",
                       "=f\(field)\(field)\(field)\(field)0\(field)", // six fields: version 1's frames
                       "=f\(field)\(field)\(field)1\(field)0\(field)\(field)\(frame)"] {
            #expect(FrameCache.decode(Substring(broken)) == nil, "\(Array(broken.utf8))")
        }
        #expect(FrameCache.decode(Substring("=f\(field)\(field)\(field)12\(field)1\(field)\(field)"))
                == [SourceFrame(function: "f", file: nil, line: 12, isInlined: true)])
        // A name that would break the line is not kept.
        #expect(FrameCache.encode([SourceFrame(function: "a\nb", file: nil, line: nil, isInlined: false)]) == nil)
    }

    static func buildID(of path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY)
        defer { close(descriptor) }
        return LibDW.elfBuildID(descriptor)
    }
}
