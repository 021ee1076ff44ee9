import Foundation
import Testing

/// Forks while another thread, inside the loader's list lock (a dl_iterate_phdr walk, or the
/// shim's own look at the loaded objects at a new call site), waits for a lock the forking
/// thread holds: the program's fork handler's, a library's (registered in its constructor,
/// before the preloaded shim's), or one held around fork(). Natively the waits end when the
/// fork is made; the shim's fork handler, which held the list lock from its prepare handler
/// on, waited for the walk, and the parent hung (fixture fork_under_program_locks ends itself
/// with status 1 after 60 s).
@Suite("fork while a thread waits inside the loader's list lock")
struct ForkUnderProgramLocksTests {
    @Test(arguments: ["library", "callback", "around"])
    func forkingThreadHoldingWhatAWalkWaitsForDoesNotHang(mode: String) throws {
        let (outcome, report) = try Harness.run([Harness.fixture("fork_under_program_locks"), mode, "50"])
        #expect(outcome.status == 0, "\(outcome.stderr.suffix(2000))")
        #expect(outcome.stdoutText == "fork_under_program_locks \(mode): 50 children\n")
        try #require(report.processes.count == 51)
        let parent = report.processes[0]
        #expect(parent.complete)
        #expect(parent.records(allocatedIn: "child_leak").isEmpty)
        for child in report.processes.dropFirst() {
            #expect(child.parentPid == parent.pid)
            #expect(child.complete, "pid \(child.pid)")
            try child.expectRecord("child_leak", bytes: 24, blocks: 1, file: "fork_under_program_locks.c", line: 44,
                                   caller: ("main", "fork_under_program_locks.c", 121))
        }
    }
}
