import Foundation
import Testing
@testable import HeapGate

/// The cache of uncompressed debug files (`DebugInfoCache`): a copy is made after a report
/// that had to read a compressed one, later symbolizers read the copy, and nothing a report
/// shows changes. Needs libc6-dbg (compressed, as Debian ships it; valgrind depends on it) and
/// binutils' objcopy (gcc depends on it), which `make test` installs.
@Suite struct DebugInfoCacheTests {
    static let libc = "/lib/x86_64-linux-gnu/libc.so.6"
    static let ready = FileManager.default.isExecutableFile(atPath: "/usr/bin/objcopy")
        && FileManager.default.fileExists(atPath: libc)

    /// An address inside libc's `malloc`, file-relative (libc is opened at base 0).
    static func mallocAddress() throws -> UInt64 {
        let outcome = try Harness.execute("/usr/bin/nm", ["-D", "--defined-only", libc])
        let line = try #require(outcome.stdoutText.split(separator: "\n").first { $0.hasSuffix(" malloc@@GLIBC_2.2.5") })
        return try #require(UInt64(line.split(separator: " ")[0], radix: 16)) + 4
    }

    @Test(.enabled(if: ready))
    func copyIsReadInsteadOfTheCompressedFile() throws {
        try Harness.withTemporaryDirectory { directory in
            let cache = DebugInfoCache(directory: directory + "/cache")
            let image = ModuleImage(path: Self.libc, base: 0)
            let address = try Self.mallocAddress()

            let first = Symbolizer(cache: cache)
            let expected = first.symbolize(address: address, in: image)
            let original = try #require(first.debugFile(forFileAt: Self.libc), "libc6-dbg is not installed")
            try #require(DebugInfoCache.hasCompressedSections(original), "libc's debug file is not compressed here")
            first.storeDecompressedDebugFiles()

            let second = Symbolizer(cache: cache)
            #expect(second.symbolize(address: address, in: image) == expected)
            let copy = try #require(second.debugFile(forFileAt: Self.libc))
            #expect(copy.hasPrefix(directory + "/cache/.build-id/"))
            #expect(!DebugInfoCache.hasCompressedSections(copy))
            // Placed from DWARF, which only the debug file has. Named as memcheck names it: of
            // malloc, __libc_malloc and __GI___libc_malloc (the debug file's symbol table), the
            // shortest.
            #expect(expected.last?.function == "malloc", "\(expected)")
            #expect(expected.last?.file?.hasSuffix("malloc/malloc.c") == true && expected.last?.line != nil, "\(expected)")
        }
    }

    /// `heapgate summary` prints the same report whether it reads the compressed file (cache
    /// off), makes the copy (first run) or reads it (second run).
    @Test(.enabled(if: ready))
    func reportIsTheSameWithAndWithoutTheCopy() throws {
        try Harness.withTemporaryDirectory { directory in
            let traces = directory + "/traces"
            try FileManager.default.createDirectory(atPath: traces, withIntermediateDirectories: true)
            _ = try Harness.trace([Harness.fixture("leak_basic")], into: traces)
            func summary(_ cache: String) throws -> String {
                let outcome = try Harness.execute(Harness.heapgate, ["summary", "--show-leak-kinds=all", traces],
                                                  environment: ["HEAPGATE_CACHE": cache])
                #expect(outcome.status == 0)
                return outcome.stderr
            }
            let off = try summary("off")
            #expect(off.contains("HEAP SUMMARY"))
            #expect(try summary(directory + "/cache") == off)
            let copies = FileManager.default.enumerator(atPath: directory + "/cache")?.compactMap { $0 as? String }
                .filter { $0.hasSuffix(".debug") } ?? []
            #expect(copies.count >= 1, "no uncompressed copy was kept")
            #expect(try summary(directory + "/cache") == off)
        }
    }

    @Test func locationFollowsTheEnvironment() {
        #expect(DebugInfoCache.fromEnvironment(["HEAPGATE_CACHE": "off", "HOME": "/h"]).directory == nil)
        #expect(DebugInfoCache.fromEnvironment(["HEAPGATE_CACHE": "/c", "HOME": "/h"]).directory == "/c")
        #expect(DebugInfoCache.fromEnvironment(["XDG_CACHE_HOME": "/x", "HOME": "/h"]).directory == "/x/heapgate")
        #expect(DebugInfoCache.fromEnvironment(["HOME": "/h"]).directory == "/h/.cache/heapgate")
        #expect(DebugInfoCache.fromEnvironment([:]).directory == nil)
        #expect(DebugInfoCache(directory: "/c").path(buildID: [0x93, 0xac, 0x61]) == "/c/.build-id/93/ac61.debug")
        #expect(DebugInfoCache(directory: "rel").directory == FileManager.default.currentDirectoryPath + "/rel")
        #expect(DebugInfoCache(directory: "/a:b").directory == nil)
        #expect(DebugInfoCache(directory: "").directory == nil)
    }
}
