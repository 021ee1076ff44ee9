import Foundation
import Testing

/// Allocations held back from the ring while several threads record (CShim/hg_holdback.c):
/// a block freed before it reached the ring leaves no event, only a count, and every other
/// block reaches the trace as its ALLOC would have. Fixture `held_back`: valgrind's figures
/// (EXPECTED: 20,007 allocs, 20,003 frees, 880,644 bytes allocated, 536 bytes in 4 blocks in
/// use) with glibc's DTV 32 bytes larger under heapgate (see `ProcessTreeTests.threads`).
@Suite("Allocations held back from the ring")
struct HoldBackTests {
    static let figures = HeapFigures(bytes: 568, blocks: 4, allocs: 20_007, frees: 20_003, bytesAllocated: 880_676)

    /// The 20,000 pairs (half of them freed by the other thread) never reach the ring: 40,017
    /// events went through it before, 13 now. The figures stay exact, and the blocks that stay
    /// (leaked, kept, grown by realloc from a block held back) have their stacks.
    @Test func pairsFreedSoonLeaveOnlyCounts() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("held_back")], flags: ["--show-leak-kinds=all"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        try #require(report.processes.count == 1)
        let process = report.processes[0]
        #expect(HeapFigures(process) == Self.figures)
        #expect(process.statistics.events < 1_000, "events through the ring: \(process.statistics.events)")
        try process.expectRecord("leak", bytes: 24, blocks: 1, file: "held_back.c", line: 60,
                                 caller: ("main", "held_back.c", 90))
        try process.expectRecord("keep", bytes: 40, blocks: 1, file: "held_back.c", line: 70,
                                 caller: ("main", "held_back.c", 93))
        try process.expectRecord("grow", bytes: 200, blocks: 1, file: "held_back.c", line: 56,
                                 caller: ("main", "held_back.c", 89))
        #expect(process.records(allocatedIn: "grow").first?.frames.first?.function == "realloc")
        #expect(process.records(allocatedIn: "leak").first?.kind == "definite")
        #expect(process.records(allocatedIn: "keep").first?.kind == "reachable")
    }

    /// Pairs of one address cancelled faster than the drain's visits (every 50 ms) count them:
    /// a slot's word holds 20 bits of pairs and 44 of bytes, and its pairs wrapped (16,050,002
    /// allocs counted as 11.9 M) and its bytes carried into its pairs (50,000 pairs of 1 GiB:
    /// 910 GB allocated, a few pairs too many). Fixture `held_back_counts`; valgrind's figures
    /// (16,050,002 allocs, 53,687,347,200,280 bytes allocated) but for the ended worker's DTV,
    /// which valgrind's freeres frees and heapgate reports in use (304 bytes).
    @Test func manyAndBigPairsOfOneAddressStayExact() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("held_back_counts")])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let process = try #require(report.processes.first)
        #expect(HeapFigures(process) == HeapFigures(bytes: 304, blocks: 1, allocs: 16_050_002, frees: 16_050_001,
                                                    bytesAllocated: 53_687_347_200_312))
    }

    /// Killed, the process leaves a trace without an exit snapshot: the blocks held back a while
    /// and the counts of the pairs are in it all the same, since the drain thread applies and
    /// counts them as it goes (every 50 ms, a block once the ring has been read past it).
    @Test func processKilledAfterAWhileLeavesItsHeldBlocks() throws {
        try Harness.withTemporaryDirectory { directory in
            let program = try BackgroundProcess(Harness.fixture("held_back"), ["wait"],
                                                environment: ["LD_PRELOAD": Harness.shim, "HEAPGATE_OUT": directory])
            try program.waitForLine("held_back: ready")
            Thread.sleep(forTimeInterval: 1.0)
            #expect(program.terminate(with: SIGKILL) == 128 + SIGKILL)
            let (summary, report) = try Harness.summary(Harness.traceFiles(in: directory))
            #expect(summary.status == 0, "\(summary.stderr)")
            let process = try #require(report?.processes.first)
            #expect(!process.complete)
            #expect(HeapFigures(process) == Self.figures)
        }
    }
}
