import Testing
@testable import HeapGate

/// The path helpers work on bytes; these pin down what they return at the edges, where a
/// byte-level rewrite could part from the component-wise meaning.
@Suite struct PathsTests {
    @Test func fileNameIsTheLastComponent() {
        #expect(fileName(of: "/a/b/c") == "c")
        #expect(fileName(of: "c") == "c")
        #expect(fileName(of: "a/b/") == "b")
        #expect(fileName(of: "/a//b//") == "b")
        #expect(fileName(of: "/") == "/")
        #expect(fileName(of: "//") == "//")
        #expect(fileName(of: "") == "")
        #expect(fileName(of: "/src/café/naïve.c") == "naïve.c")
    }

    @Test func directoryNameIsWhatPrecedesIt() {
        #expect(directoryName(of: "/a/b/c") == "/a/b")
        #expect(directoryName(of: "/a") == "/")
        #expect(directoryName(of: "a") == nil)
    }

    @Test func preloadReadsTheMappedFilesExecutableFirstThenLibc() {
        let maps = """
            55d0c0a00000-55d0c0a02000 r--p 00000000 08:01 1234 /usr/bin/prog
            55d0c0a02000-55d0c0a08000 r-xp 00002000 08:01 1234 /usr/bin/prog
            7f0000000000-7f0000022000 r-xp 00000000 08:01 99 /usr/lib/x86_64-linux-gnu/libz.so.1.2.13
            7f0000100000-7f0000128000 r--p 00000000 08:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
            7f0000128000-7f000029d000 r-xp 00028000 08:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
            7f0000300000-7f0000301000 r-xp 00000000 08:01 55 /opt/with space/libx.so
            7f0000400000-7f0000401000 rw-p 00000000 00:00 0 
            7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
            7ffd00100000-7ffd00102000 r-xp 00000000 00:00 0                          [vdso]
            """
        #expect(DebugInfoPreload.files(inMaps: Array(maps.utf8), executable: "/usr/bin/prog")
            == ["/usr/bin/prog", "/usr/lib/x86_64-linux-gnu/libc.so.6",
                "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", "/opt/with space/libx.so"])
    }
}
