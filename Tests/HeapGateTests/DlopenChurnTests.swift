import Foundation
import Testing

/// Plugins loaded and unloaded in turn, each mapped where the last one was (dl_churn,
/// libchurn1.so … libchurn4.so, 4,200 loads: past the 4,096 the shim's module table held).
@Suite("dlopen and dlclose many times")
struct DlopenChurnTests {
    /// The four plugins allocate from one return address, so their blocks share a stack and
    /// the trace cannot say which plugin's code that address was in: the frame is `???`, with
    /// a warning that says why, never one plugin's name for all four's leaks. It was
    /// `churn1_leak` (the first plugin, which the trace alone recorded: no stack was ever new),
    /// and once every load was recorded, `churn4_leak` (the exit snapshot restates every
    /// module, and the newest won). valgrind --keep-debuginfo=yes names each plugin's function.
    @Test func framesAtAddressesPluginsSharedAreNotNamedAfterOne() throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--", Harness.fixture("dl_churn")])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let lines = outcome.stderr.split(separator: "\n").map { line in
            String(line.drop(while: { $0 != " " }).dropFirst()) // the ==PID== prefix
        }
        #expect(lines.contains("WARNING: 1 return address is shown as ??? because different libraries were loaded there at different times (dlopen, dlclose): heapgate cannot tell which one's code they were in."),
                "\(outcome.stderr)")
        let record = try #require(lines.firstIndex(of: "84,000 bytes in 4,200 blocks are definitely lost in loss record 1 of 1"),
                                  "\(outcome.stderr)")
        #expect(lines[record + 1].hasSuffix(": malloc (libheapgate.so)"), "\(outcome.stderr)")
        #expect(lines[record + 2].hasPrefix("   by 0x") && lines[record + 2].hasSuffix(": ???"), "\(outcome.stderr)")
        #expect(lines[record + 3].hasSuffix(": main (dl_churn.c:42)"), "\(outcome.stderr)")
        #expect(!outcome.stderr.contains("_leak"), "\(outcome.stderr)")
    }

    /// A fork child's trace and its exit snapshot name the modules loaded when its trace
    /// started and since, not every module its parent ever loaded: a child forked after 4,200
    /// loads and unloads restated all 4,200 (400 KB of its trace; 8.7 MB after 100,000 cycles).
    /// The blocks it inherits keep their figures and their caller's frame; their frame in the
    /// unloaded plugins is `???`, as in the parent, where the plugins shared its addresses.
    @Test func forkChildRestatesOnlyItsOwnModules() throws {
        try Harness.withTemporaryDirectory { directory in
            let outcome = try Harness.trace([Harness.fixture("dl_churn"), "4200", "fork"], into: directory)
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let files = Harness.traceFiles(in: directory)
            try #require(files.count == 2, "\(files)")
            let sizes = try files.map { try #require(FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int) }
            let (parentSize, childSize) = (sizes.max()!, sizes.min()!)
            #expect(parentSize > 300_000, "\(sizes)")
            #expect(childSize < 100_000, "\(sizes)")
            let (summary, report) = try Harness.summary(files)
            #expect(summary.status == 0, "\(summary.stderr)")
            let processes = try #require(report).processes
            try #require(processes.count == 2)
            let child = processes[1]
            #expect(child.parentPid == processes[0].pid)
            let record = try #require(child.records.first { $0.bytes == 84_000 }, "\(child.records)")
            #expect(record.blocks == 4_200)
            #expect(record.kind == "definite")
            #expect(record.frames.count >= 3)
            #expect(record.frames[1].function == nil || record.frames[1].function == "???", "\(record.frames)")
            #expect(record.frames[2].function == "main" && record.frames[2].line == 42, "\(record.frames)")
        }
    }

    /// A child forked while another thread is inside dlopen or dlclose: glibc resets one of the
    /// loader's locks in the child, not the one dl_iterate_phdr takes, and the child's first new
    /// call site (the shim looks at the loaded objects there) waited for ever on it, held by a
    /// thread the child does not have. The fixture kills a child that takes 30 s and exits 1:
    /// before the fix, a child in the first 50 or so hung in every run (4 runs in 4). Every child
    /// now ends and reports its own leak; a child forked mid-dlopen may also hold that dlopen's
    /// half-made link map, which no pointer reaches (memcheck says the same), so its totals
    /// are not checked.
    @Test func childrenForkedWhileAnotherThreadLoadsLibrariesEnd() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("fork_while_dlopening"), "100"])
        #expect(outcome.status == 0, "\(outcome.stderr.suffix(2000))")
        #expect(outcome.stdoutText == "fork_while_dlopening: 100 children\n")
        try #require(report.processes.count == 101)
        let parent = report.processes[0]
        #expect(parent.records(allocatedIn: "child_leak").isEmpty)
        for child in report.processes.dropFirst() {
            #expect(child.parentPid == parent.pid)
            #expect(child.complete, "pid \(child.pid)")
            try child.expectRecord("child_leak", bytes: 24, blocks: 1, file: "fork_while_dlopening.c", line: 48,
                                   caller: ("main", "fork_while_dlopening.c", 87))
        }
    }
}
