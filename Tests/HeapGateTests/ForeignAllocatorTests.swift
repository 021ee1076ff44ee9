import Foundation
import Testing

/// Programs with their own allocator linked in (Tests/Fixtures/src/own_allocator.c), as rustc
/// links jemalloc: ld.so binds every caller's malloc to the program's, ahead of the preloaded
/// shim. heapgate replaces it with glibc's, as memcheck replaces it with its own, and leaves it
/// in place, with a warning, where that is not safe (CShim/hg_foreign_allocator.c).
@Suite("Programs with their own allocator")
struct ForeignAllocatorTests {
    typealias Amount = Report.Amount

    /// The blocks the fixture leaves, whichever way it was built.
    static func expectOwnBlocks(_ process: Report.Process, extraReachable: Amount = Amount(bytes: 0, blocks: 0)) throws {
        let leaks = try #require(process.leaks)
        #expect(leaks.definite == Amount(bytes: 168, blocks: 2))
        #expect(leaks.indirect == Amount(bytes: 0, blocks: 0))
        #expect(leaks.possible == Amount(bytes: 0, blocks: 0))
        #expect(leaks.reachable == Amount(bytes: 54 + extraReachable.bytes, blocks: 2 + extraReachable.blocks))
        expectLeak(process, in: "leak_forty", bytes: 40, line: 124, entry: "malloc")
        expectLeak(process, in: "leak_aligned", bytes: 128, line: 132, entry: "posix_memalign")
    }

    static func expectLeak(_ process: Report.Process, in function: String, bytes: UInt64, line: Int, entry: String) {
        let records = process.records(allocatedIn: function)
        #expect(records.count == 1, "one record through \(function)")
        guard let record = records.first else { return }
        #expect(record.kind == "definite")
        #expect(record.bytes == bytes && record.blocks == 1)
        #expect(record.frames.first?.function == entry)
        let frame = record.frames.first { $0.function == function }
        #expect(frame?.file == "own_allocator.c" && frame?.line == line, "\(String(describing: frame))")
    }

    /// The program's malloc, free, realloc, calloc and posix_memalign all reach heapgate: the
    /// same figures as valgrind's, which the shim without the replacement did not see at all
    /// (0 allocs, "no leaks are possible").
    @Test func replacedByGlibcs() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("own_allocator")])
        #expect(outcome.status == 0)
        #expect(outcome.stdoutText == "own allocator: grown\n")
        let process = try #require(report.processes.first)
        #expect(process.heap.allocs == 6)
        #expect(process.heap.frees == 1)
        #expect(process.heap.bytesAllocated == 4_328)
        try Self.expectOwnBlocks(process)
        #expect(outcome.stderr.contains("NOTE: \(Harness.fixture("own_allocator")) defines its own malloc; heapgate replaced it with glibc's"))
        let allocator = try #require(try allocatorObject())
        #expect(allocator["replaced"] as? Bool == true)
    }

    @Test(.enabled(if: Harness.valgrindAvailable, "valgrind is not installed at /usr/bin/valgrind"))
    func sameLeakSummaryAsValgrind() throws {
        let (_, heapgate) = try LeakRun.heapgate(["own_allocator"])
        let (_, valgrind) = try LeakRun.valgrind(["own_allocator"])
        for kind in LeakCheck.Kind.allCases {
            #expect(heapgate.total(kind) == valgrind.total(kind), "\(kind)")
        }
        #expect(heapgate.total(LeakCheck.Kind.definite) == LeakCheck.Amount(168, 2))
    }

    /// libearly's constructor runs before heapgate's and allocates two blocks from the
    /// program's allocator; the program then frees one and reallocs the other. The free is left
    /// to that allocator (not counted), the realloc copies the block, contents intact, into a
    /// new glibc block (counted as an allocation, still reachable from libearly's global).
    /// `_sbrk`: the old allocator took its memory with sbrk and left the break inside a page,
    /// where glibc's heap then starts; those glibc blocks are glibc's (a shim that took the
    /// whole page for the old allocator's ignored their frees: 0 frees, 10 bytes "lost").
    @Test(arguments: ["own_allocator_early", "own_allocator_early_sbrk"])
    func blocksFromBeforeStayWithTheOldAllocator(fixture: String) throws {
        let (outcome, report) = try Harness.run([Harness.fixture(fixture)])
        #expect(outcome.status == 0)
        #expect(outcome.stdoutText == "early block: made before heapgate started\nown allocator: grown\n")
        let process = try #require(report.processes.first)
        #expect(process.heap.allocs == 7)
        #expect(process.heap.frees == 1)
        #expect(process.heap.bytesAllocated == 8_328)
        try Self.expectOwnBlocks(process, extraReachable: Amount(bytes: 4_000, blocks: 1))
    }

    /// jemalloc's own entry points, which the program calls directly, are served by glibc too:
    /// mallocx honours its alignment and zeroing flags, sdallocx and __libc_free free (the
    /// block would otherwise stay in use), and the block mallocx
    /// leaks is found, with mallocx as its first frame. (valgrind, which leaves them alone,
    /// reports an invalid free in sdallocx and misses that block.)
    @Test func jemallocEntryPointsToo() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("own_allocator_jemalloc")])
        #expect(outcome.status == 0)
        #expect(outcome.stdoutText == "own allocator: grown\n") // no "mallocx: misaligned"
        let process = try #require(report.processes.first)
        #expect(process.heap.allocs == 9)
        #expect(process.heap.frees == 3) // sdallocx and __libc_free among them
        let leaks = try #require(process.leaks)
        #expect(leaks.definite == Amount(bytes: 200, blocks: 3))
        Self.expectLeak(process, in: "leak_mallocx", bytes: 32, line: 140, entry: "mallocx")
    }

    /// Where replacing is not safe, the program runs with its own allocator, exactly as without
    /// heapgate, and the report says that its blocks were not seen instead of "no leaks".
    @Test(arguments: [
        ("own_allocator_mimalloc", "it also defines mi_free"),
        ("own_allocator_stripped", "its symbol table is stripped, so its other entry points cannot be checked"),
    ])
    func leftInPlaceWithAWarning(fixture: String, reason: String) throws {
        let native = try Harness.execute(Harness.fixture(fixture), [])
        let (outcome, report) = try Harness.run([Harness.fixture(fixture)])
        #expect(outcome.status == native.status)
        #expect(outcome.stdout == native.stdout)
        #expect(outcome.stderr.contains(
            "WARNING: \(Harness.fixture(fixture)) defines its own malloc, which heapgate could not replace (\(reason)):"))
        #expect(outcome.stderr.contains("WARNING: the blocks it hands out are not traced"))
        #expect(!outcome.stderr.contains("no leaks are possible"))
        let process = try #require(report.processes.first)
        #expect(process.heap.allocs == 0)
        let allocator = try #require(try allocatorObject(fixture))
        #expect(allocator["replaced"] as? Bool == false)
        #expect(allocator["reason"] as? String == reason)
    }

    /// A sanitizer's runtime brings its own malloc, and its checks depend on it (with glibc's in
    /// its place, an AddressSanitizer program hung): left alone, so AddressSanitizer runs and
    /// reports as it does without heapgate, and the report says why it saw no blocks. Its
    /// runtime leaves by a raw exit, so the trace is incomplete: the warning still comes,
    /// because the shim writes the ALLOCATOR record at the start.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Harness.fixture("leak_basic_asan")),
                   "no clang that builds with -fsanitize=address"))
    func sanitizerRuntimeLeftAlone() throws {
        let fixture = Harness.fixture("leak_basic_asan")
        let native = try Harness.execute(fixture, [])
        let (outcome, _) = try Harness.runReport([fixture])
        #expect(native.status == 1)
        #expect(outcome.status == native.status)
        #expect(outcome.stdout == native.stdout)
        #expect(native.stderr.contains("SUMMARY: AddressSanitizer: 228 byte(s) leaked in 4 allocation(s)."))
        #expect(outcome.stderr.contains("SUMMARY: AddressSanitizer: 228 byte(s) leaked in 4 allocation(s)."))
        #expect(outcome.stderr.contains(
            "WARNING: \(fixture) defines its own malloc, which heapgate could not replace (it also defines __sanitizer_get_allocated_size):"))
    }

    /// A malloc wrapper in the program (counting calls, then calling the next malloc, which is
    /// the shim's) is no allocator: left alone, silently, so the program's own counting still
    /// runs (a shim that replaced it printed "0 allocations and 0 frees"), and heapgate sees
    /// every block through it. The wrapper counts at least the program's 13 allocations and 11
    /// frees: the shim's own (libunwind's, its writer thread's) go through the program's malloc
    /// too, a few, depending on timing, as before this replacement existed.
    @Test func mallocWrapperLeftAlone() throws {
        let native = try Harness.execute(Harness.fixture("malloc_wrapper"), [])
        #expect(native.stdoutText == "wrapper counted 13 allocations and 11 frees\n")
        let (outcome, report) = try Harness.run([Harness.fixture("malloc_wrapper")])
        #expect(outcome.status == 0)
        let words = outcome.stdoutText.split(separator: " ")
        #expect(words.count == 7 && words[0] == "wrapper", "\(outcome.stdoutText)")
        #expect((words.count > 2 ? Int(words[2]) ?? 0 : 0) >= 13, "\(outcome.stdoutText)")
        #expect((words.count > 5 ? Int(words[5]) ?? 0 : 0) >= 11, "\(outcome.stdoutText)")
        #expect(!outcome.stderr.contains("defines its own malloc"))
        let process = try #require(report.processes.first)
        let leaks = try #require(process.leaks)
        #expect(leaks.definite == Amount(bytes: 40, blocks: 1))
        let record = try #require(process.records(allocatedIn: "leak_through_wrapper").first)
        #expect(record.frames.map(\.function).prefix(3) == ["malloc", "malloc", "leak_through_wrapper"])
        #expect(record.frames[1].file == "malloc_wrapper.c" && record.frames[1].line == 33)
        #expect(try allocatorObject("malloc_wrapper") == nil)
    }

    /// An allocator under names of its own (mi_malloc here; Rust's tikv-jemallocator links
    /// jemalloc as _rjem_malloc) hands out blocks that are not malloc's: neither heapgate nor
    /// memcheck sees them, and `heapgate run` says so instead of passing over them in silence.
    @Test func prefixedAllocatorNamed() throws {
        let fixture = Harness.fixture("prefixed_allocator")
        let (outcome, report) = try Harness.run([fixture])
        #expect(outcome.status == 0)
        #expect(outcome.stdoutText == "prefixed allocator: done\n")
        #expect(outcome.stderr.contains("heapgate: warning: \(fixture) also links mimalloc (mi_malloc): the blocks it hands out are not malloc's, so heapgate does not trace them (nor does valgrind)"))
        let leaks = try #require(report.processes.first?.leaks)
        #expect(leaks.definite == Amount(bytes: 24, blocks: 1))
        let (plain, _) = try Harness.run([Harness.fixture("leak_basic")])
        #expect(!plain.stderr.contains("also links"))
    }

    /// An allocator library linked after the shim in the search order (Debian's jemalloc, as
    /// `-ljemalloc` links it): the shim's entry points come first and call it in glibc's place
    /// (hg_real.c), so nothing is replaced and every block is seen: leak_basic's leaks, and the
    /// same LEAK SUMMARY as valgrind's.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Harness.fixture("leak_basic_jemalloc")),
                   "no libjemalloc.so.2 (Debian's libjemalloc2)"))
    func allocatorLibraryCalledThroughTheShim() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("leak_basic_jemalloc")])
        #expect(outcome.status == 0)
        #expect(!outcome.stderr.contains("defines its own malloc"))
        let process = try #require(report.processes.first)
        let leaks = try #require(process.leaks)
        #expect(leaks.definite == Amount(bytes: 228, blocks: 4))
        #expect(process.records(allocatedIn: "leak_twice").first?.bytes == 200)
        if Harness.valgrindAvailable {
            let (_, heapgate) = try LeakRun.heapgate(["leak_basic_jemalloc"])
            let (_, valgrind) = try LeakRun.valgrind(["leak_basic_jemalloc"])
            for kind in LeakCheck.Kind.allCases {
                #expect(heapgate.total(kind) == valgrind.total(kind), "\(kind)")
            }
        }
    }

    /// The JSON report's "allocator" object, from a run of its own.
    private func allocatorObject(_ fixture: String = "own_allocator") throws -> [String: Any]? {
        let (_, json) = try LeakRun.heapgateRaw([fixture], flags: [])
        let data = try #require(json)
        let document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let processes = try #require(document["processes"] as? [[String: Any]])
        return processes.first?["allocator"] as? [String: Any]
    }
}
