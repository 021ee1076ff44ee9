import Foundation
import Testing

/// A library opened with dlopen(RTLD_DEEPBIND) binds malloc and free to glibc's, past the
/// preloaded shim (Tests/Fixtures/src/deepbind.c, libdeep.c): the shim rebinds its GOT slots
/// to itself (CShim/hg_bypass.c) and the report names the library.
@Suite("Libraries loaded with RTLD_DEEPBIND")
struct DeepBindTests {
    typealias Amount = Report.Amount

    static func expectLibraryLeak(_ process: Report.Process) {
        let records = process.records(allocatedIn: "deep_alloc")
        #expect(records.count == 1)
        guard let record = records.first else { return }
        #expect(record.kind == "definite" && record.bytes == 77 && record.blocks == 1)
        #expect(record.frames.first?.function == "malloc")
        let frame = record.frames.first { $0.function == "deep_alloc" }
        #expect(frame?.file == "libdeep.c" && frame?.line == 7, "\(String(describing: frame))")
    }

    /// RTLD_NOW | RTLD_DEEPBIND: the slots are bound to glibc when dlopen returns, and rebound
    /// at the shim's next look, before the library's first call: the same figures as without
    /// RTLD_DEEPBIND, and as valgrind's. Without the rebinding, the library's 77-byte leak was
    /// missing and the 33 bytes it freed for the program were "definitely lost". `relro`: a
    /// library linked -z now -z relro, whose GOT is read-only once bound (the rebinding makes
    /// the page writable for the store).
    @Test(arguments: ["now", "plain", "relro"])
    func sameFiguresAsWithout(mode: String) throws {
        let (outcome, report) = try Harness.run([Harness.fixture("deepbind"), mode])
        #expect(outcome.status == 0)
        #expect(outcome.stdoutText == "deepbind: done\n")
        let process = try #require(report.processes.first)
        #expect(process.heap.allocs == 11)
        #expect(process.heap.frees == 3)
        let leaks = try #require(process.leaks)
        #expect(leaks.definite == Amount(bytes: 77, blocks: 1))
        #expect(leaks.possible == Amount(bytes: 0, blocks: 0))
        Self.expectLibraryLeak(process)
        let warned = outcome.stderr.contains(".so called glibc's malloc and free directly, not through heapgate (it was loaded with RTLD_DEEPBIND);")
        #expect(warned == (mode != "plain"))
        let libraries = try bypassingLibraries(mode)
        #expect(libraries.count == (mode != "plain" ? 1 : 0))
        if mode != "plain" {
            #expect((libraries.first?["path"] as? String)?.hasSuffix(mode == "relro" ? "/libdeep_relro.so" : "/libdeep.so") == true)
            #expect(libraries.first?["rebound"] as? Bool == true)
        }
    }

    /// RTLD_LAZY | RTLD_DEEPBIND: the library's first malloc binds to glibc's at the call, before
    /// the shim can look, so its 77-byte leak is missed (the warning says so); its free, still
    /// unresolved when the shim looks, is bound to the shim's, so the 33 bytes it frees are
    /// freed here too (no false leak).
    @Test func lazyBindingMissesOnlyWhatCameBefore() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("deepbind"), "lazy"])
        #expect(outcome.status == 0)
        let process = try #require(report.processes.first)
        #expect(process.heap.allocs == 10)
        #expect(process.heap.frees == 3)
        let leaks = try #require(process.leaks)
        #expect(leaks.definite == Amount(bytes: 0, blocks: 0))
        #expect(outcome.stderr.contains("WARNING: heapgate redirected it when it noticed, so blocks it allocated or freed before then are missing or shown in use."))
    }

    @Test(.enabled(if: Harness.valgrindAvailable, "valgrind is not installed at /usr/bin/valgrind"))
    func sameLeakSummaryAsValgrind() throws {
        let (_, heapgate) = try LeakRun.heapgate(["deepbind", "now"])
        let (_, valgrind) = try LeakRun.valgrind(["deepbind", "now"])
        for kind in LeakCheck.Kind.allCases {
            #expect(heapgate.total(kind) == valgrind.total(kind), "\(kind)")
        }
        #expect(heapgate.total(LeakCheck.Kind.definite) == LeakCheck.Amount(77, 1))
    }

    /// The JSON report's "bypassingLibraries", from a run of its own.
    private func bypassingLibraries(_ mode: String) throws -> [[String: Any]] {
        let (_, json) = try LeakRun.heapgateRaw(["deepbind", mode], flags: [])
        let data = try #require(json)
        let document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let processes = try #require(document["processes"] as? [[String: Any]])
        return try #require(processes.first?["bypassingLibraries"] as? [[String: Any]])
    }
}
