import Foundation
import Testing
@testable import HeapGate

/// The separate-debug-file search that replaces libdwfl's standard one (`LocalDebugInfoSearch`):
/// a program whose DWARF was moved out by `objcopy --only-keep-debug` and found through its
/// `.gnu_debuglink`, by build id or by CRC, in each directory the standard search uses; and a
/// debug file of another build is refused. Needs cc and binutils' objcopy (gcc depends on it).
@Suite struct LocalDebugInfoSearchTests {
    static let ready = FileManager.default.isExecutableFile(atPath: "/usr/bin/objcopy")
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/cc")

    static let source = """
        __attribute__((noinline)) int helper(int x) {
            return x * 3;
        }
        int main(void) { return helper(2) == 6 ? 0 : 1; }

        """

    /// Builds `prog` in `directory` with its DWARF moved to `prog.debug` (returned) and a debug
    /// link to it; `buildID` false links without a build id, so only the CRC identifies it.
    @discardableResult
    static func build(in directory: String, buildID: Bool, variant: String = "") throws -> String {
        let source = directory + "/prog.c"
        try (Self.source + variant).write(toFile: source, atomically: true, encoding: .utf8)
        let program = directory + "/prog", debug = directory + "/prog.debug"
        let steps: [(String, [String])] = [
            ("/usr/bin/cc", ["-g", "-O1", "-Wl,--build-id=\(buildID ? "sha1" : "none")", "-o", program, source]),
            ("/usr/bin/objcopy", ["--only-keep-debug", program, debug]),
            ("/usr/bin/objcopy", ["--strip-debug", "--add-gnu-debuglink=\(debug)", program]),
        ]
        for (tool, arguments) in steps {
            let outcome = try Harness.execute(tool, arguments, directory: directory)
            try #require(outcome.status == 0, "\(tool) \(arguments): \(outcome.stderr)")
        }
        return debug
    }

    /// `helper`'s frame as a fresh symbolizer (no debug cache) sees it.
    static func helperFrame(_ program: String, cache: DebugInfoCache = DebugInfoCache(directory: nil)) throws -> SourceFrame? {
        let symbols = try Harness.execute("/usr/bin/nm", [program]).stdoutText
        let line = try #require(symbols.split(separator: "\n").first { $0.hasSuffix(" T helper") })
        let address = try #require(UInt64(line.split(separator: " ")[0], radix: 16))
        return Symbolizer(cache: cache).symbolize(address: address, in: ModuleImage(path: program, base: 0)).last
    }

    static func expectFound(_ frame: SourceFrame?, _ comment: Comment? = nil) {
        #expect(frame?.function == "helper", comment)
        #expect(frame?.file?.hasSuffix("prog.c") == true && frame?.line == 2, comment)
    }

    static func expectNotFound(_ frame: SourceFrame?, _ comment: Comment? = nil) {
        // The symbol table still names it; only the DWARF's file and line are missing.
        #expect(frame?.function == "helper", comment)
        #expect(frame?.file == nil && frame?.line == nil, comment)
    }

    @Test(.enabled(if: ready), arguments: [true, false])
    func foundBesideTheFileAndInItsDebugDirectory(buildID: Bool) throws {
        try Harness.withTemporaryDirectory { directory in
            let debug = try Self.build(in: directory, buildID: buildID)
            let program = directory + "/prog"
            Self.expectFound(try Self.helperFrame(program), "beside")
            try FileManager.default.createDirectory(atPath: directory + "/.debug", withIntermediateDirectories: true)
            try FileManager.default.moveItem(atPath: debug, toPath: directory + "/.debug/prog.debug")
            Self.expectFound(try Self.helperFrame(program), ".debug")
            try FileManager.default.removeItem(atPath: directory + "/.debug/prog.debug")
            Self.expectNotFound(try Self.helperFrame(program), "removed")
        }
    }

    /// An absolute `debuginfo_path` entry (here the cache directory, as /usr/lib/debug is by
    /// default) is followed by the file's own directory.
    @Test(.enabled(if: ready))
    func foundUnderAnAbsoluteDirectory() throws {
        try Harness.withTemporaryDirectory { directory in
            let build = directory + "/build"
            try FileManager.default.createDirectory(atPath: build, withIntermediateDirectories: true)
            let debug = try Self.build(in: build, buildID: true)
            let cache = directory + "/cache"
            try FileManager.default.createDirectory(atPath: cache + build, withIntermediateDirectories: true)
            try FileManager.default.moveItem(atPath: debug, toPath: cache + build + "/prog.debug")
            Self.expectFound(try Self.helperFrame(build + "/prog", cache: DebugInfoCache(directory: cache)))
        }
    }

    /// A debug file of another build under the linked name is not read: by build id, or by CRC
    /// when there is no build id.
    @Test(.enabled(if: ready), arguments: [true, false])
    func anotherBuildsDebugFileIsRefused(buildID: Bool) throws {
        try Harness.withTemporaryDirectory { directory in
            let other = directory + "/other"
            try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
            let stranger = try Self.build(in: other, buildID: buildID, variant: "int unused_other(void) { return 7; }\n")
            let debug = try Self.build(in: directory, buildID: buildID)
            try FileManager.default.removeItem(atPath: debug)
            try FileManager.default.copyItem(atPath: stranger, toPath: debug)
            Self.expectNotFound(try Self.helperFrame(directory + "/prog"))
        }
    }

    /// On this machine's libraries and the test fixtures, the local search opens the same debug
    /// file as libdwfl's standard one (which, without DEBUGINFOD_URLS, finds nothing more).
    @Test(.enabled(if: ready))
    func findsWhatTheStandardSearchFinds() throws {
        let libraries = ["libc.so.6", "libm.so.6", "libstdc++.so.6", "libz.so.1", "libunwind.so.8", "libdw.so.1", "libelf.so.1",
                         "libgcc_s.so.1", "libsqlite3.so.0", "libjq.so.1"]
            .map { "/lib/x86_64-linux-gnu/" + $0 }
            .filter { FileManager.default.fileExists(atPath: $0) }
        let fixtures = (try? FileManager.default.contentsOfDirectory(atPath: Harness.fixture(""))) ?? []
        let paths = libraries + fixtures.sorted().prefix(12).map { Harness.fixture($0) }
        // The local symbolizer first: it clears DEBUGINFOD_URLS, so the standard one cannot go to the network.
        let local = Symbolizer(useDebuginfod: false, cache: DebugInfoCache(directory: nil))
        let standard = Symbolizer(useDebuginfod: true, cache: DebugInfoCache(directory: nil))
        local.preload(paths: paths)
        standard.preload(paths: paths)
        var found = 0
        for path in paths {
            let ours = local.debugFile(forFileAt: path).map(Harness.realPath)
            #expect(ours == standard.debugFile(forFileAt: path).map(Harness.realPath), "\(path)")
            if ours != nil { found += 1 }
        }
        #expect(found >= 1, "no separate debug file found at all (libc6-dbg is installed by make test)")
    }

    @Test func candidatesFollowTheStandardOrder() {
        let found = LocalDebugInfoSearch.candidates(file: "/usr/lib/x/libm.so.6", link: "libm.debug",
                                                    path: ":.debug:/cache:/usr/lib/debug")
        #expect(found == [
            "/usr/lib/x/libm.debug",
            "/usr/lib/x/.debug/libm.debug",
            "/cache/usr/lib/x/libm.debug", "/cache/lib/x/libm.debug", "/cache/x/libm.debug",
            "/usr/lib/debug/usr/lib/x/libm.debug", "/usr/lib/debug/lib/x/libm.debug", "/usr/lib/debug/x/libm.debug",
        ])
        // No link: the invented BASENAME.debug, and the base name itself where it is not the file.
        #expect(LocalDebugInfoSearch.candidates(file: "/a/prog", link: nil, path: "+:.debug:/d") == [
            "/a/prog.debug", "/a/.debug/prog.debug", "/a/.debug/prog", "/d/a/prog.debug", "/d/a/prog",
        ])
    }

    @Test func crcIsZlibs() throws {
        let path = Harness.temporaryPath("crc")
        defer { Harness.removeTemporary(path) }
        try Data("123456789".utf8).write(to: URL(fileURLWithPath: path))
        let descriptor = open(path, O_RDONLY)
        defer { close(descriptor) }
        #expect(LocalDebugInfoSearch.crc32(of: descriptor) == 0xCBF4_3926)  // the CRC-32 check value
    }
}
