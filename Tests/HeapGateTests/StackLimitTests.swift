import Foundation
import Testing

/// The shim keeps at most HEAPGATE_MAX_STACKS distinct stacks (by default three quarters of its
/// table). Past that, an allocation with a new stack is recorded without one: the report must
/// say how many, and show those blocks with no frames, not with someone else's.
@Suite("Stack limit")
struct StackLimitTests {
    /// many_stacks allocates from 40 distinct stacks twice (leaking the first pass); with room
    /// for 10, depths 11 to 40 have no stack in either pass.
    @Test func allocationsPastTheLimitAreCountedAndShownWithoutFrames() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("many_stacks")], flags: ["--num-callers=50"],
                                                environment: ["HEAPGATE_MAX_STACKS": "10"])
        #expect(outcome.status == 0)
        #expect(outcome.stderr.contains("limit of distinct stacks (HEAPGATE_MAX_STACKS) was reached: 60 allocations"),
                "\(outcome.stderr)")
        let process = try #require(report.processes.first)
        #expect(process.statistics.allocationsWithoutStack == 60)
        #expect(process.heap.allocs == 80 && process.heap.frees == 40 && process.heap.bytesAllocated == 1_280)
        #expect(process.leaks?.definite == Report.Amount(bytes: 640, blocks: 40))
        let kept = process.records.filter { !$0.frames.isEmpty }
        #expect(kept.count == 10)
        for record in kept {
            #expect(record.bytes == 16 && record.blocks == 1)
            // malloc, descend once per level and once more at depth 0, main.
            let levels = record.frames.filter { $0.function == "descend" }.count
            #expect((2...11).contains(levels))
            #expect(record.frames.count == levels + 2)
            #expect(record.frames.last?.function == "main" && record.frames.last?.line == 39)
        }
        let withoutStack = process.records.filter { $0.frames.isEmpty }
        #expect(withoutStack.count == 1)
        #expect(withoutStack.first?.bytes == 480 && withoutStack.first?.blocks == 30)
    }

    /// Under the limit nothing is dropped and nothing is said.
    @Test func noWarningUnderTheLimit() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("many_stacks")], flags: ["--num-callers=50"],
                                                environment: ["HEAPGATE_MAX_STACKS": "40"])
        #expect(!outcome.stderr.contains("HEAPGATE_MAX_STACKS"), "\(outcome.stderr)")
        let process = try #require(report.processes.first)
        #expect(process.statistics.allocationsWithoutStack == 0)
        #expect(process.records.count == 40)
        #expect(process.records.allSatisfy { !$0.frames.isEmpty && $0.bytes == 16 && $0.blocks == 1 })
    }
}
