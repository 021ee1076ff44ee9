import Foundation
import Testing

/// `heapgate run` follows a whole process tree: fork children, exec'd images, libraries that
/// come and go, and threads. Figures are valgrind's without freeres (Tests/Fixtures/EXPECTED.md).
@Suite("Process trees: fork, exec, dlopen, threads")
struct ProcessTreeTests {
    /// `fork_child` (child ends with `_exit(0)`) and `fork_child exit` (child ends with `exit(0)`):
    /// one report per process, the started process first. The child inherits the parent's
    /// 16-byte block, so it is in the child's figures too, as memcheck counts it.
    @Test(arguments: [[String](), ["exit"]])
    func forkChild(_ arguments: [String]) throws {
        let (outcome, report) = try Harness.run([Harness.fixture("fork_child")] + arguments)
        #expect(outcome.status == 0)
        try #require(report.processes.count == 2)
        let parent = report.processes[0], child = report.processes[1]

        #expect(parent.exitStatus == 0)
        #expect(parent.complete)
        #expect(HeapFigures(parent) == HeapFigures(bytes: 80, blocks: 2, allocs: 2, frees: 0, bytesAllocated: 80))
        try parent.expectRecord("parent_leak", bytes: 16, blocks: 1, file: "fork_child.c", line: 27,
                                caller: ("main", "fork_child.c", 56))
        try parent.expectRecord("parent_after_fork", bytes: 64, blocks: 1, file: "fork_child.c", line: 41,
                                caller: ("main", "fork_child.c", 72))
        #expect(parent.records(allocatedIn: "child_leak").isEmpty)
        #expect(parent.records.count == 2)

        #expect(child.parentPid == parent.pid)
        #expect(child.pid != parent.pid)
        #expect(child.complete, "the child's trace is closed by _exit / exit")
        #expect(HeapFigures(child) == HeapFigures(bytes: 64, blocks: 2, allocs: 2, frees: 0, bytesAllocated: 64))
        try child.expectRecord("parent_leak", bytes: 16, blocks: 1, file: "fork_child.c", line: 27,
                               caller: ("main", "fork_child.c", 56))
        try child.expectRecord("child_leak", bytes: 48, blocks: 1, file: "fork_child.c", line: 34,
                               caller: ("main", "fork_child.c", 61))
        #expect(child.records(allocatedIn: "parent_after_fork").isEmpty)
        #expect(child.records.count == 2)
    }

    /// `exec_child leak_basic`: exec_child itself (which allocates nothing) and leak_basic in the
    /// forked child after execv. The forked pre-exec image gets no report, as under memcheck.
    @Test func execChild() throws {
        let program = Harness.fixture("leak_basic")
        let (outcome, report) = try Harness.run([Harness.fixture("exec_child"), program])
        #expect(outcome.status == 0)
        #expect(outcome.stdoutText == "leak_basic: done\n")
        try #require(report.processes.count == 2, "exec_child and leak_basic, nothing for the pre-exec image")
        let parent = report.processes[0], exec = report.processes[1]

        #expect(parent.command == [Harness.fixture("exec_child"), program])
        #expect(parent.exitStatus == 0)
        #expect(parent.complete)
        #expect(HeapFigures(parent) == HeapFigures(bytes: 0, blocks: 0, allocs: 0, frees: 0, bytesAllocated: 0))
        #expect(parent.records.isEmpty)

        #expect(exec.command == [program])
        #expect(exec.parentPid == parent.pid)
        #expect(exec.complete)
        #expect(HeapFigures(exec) == TraceInputTests.leakBasic)
        try exec.expectRecord("leak_name", bytes: 24, blocks: 1, file: "leak_basic.c", line: 24,
                              caller: ("main", "leak_basic.c", 63))
        try exec.expectRecord("leak_twice", bytes: 200, blocks: 2, file: "leak_basic.c", line: 31,
                              caller: ("main", "leak_basic.c", 65))
        try exec.expectRecord("leak_calloc", bytes: 4, blocks: 1, file: "leak_basic.c", line: 38,
                              caller: ("main", "leak_basic.c", 66))
        #expect(exec.records.count == 3)
    }

    /// `vfork_exec`: a vfork child runs on the parent's memory, the shim's state and the
    /// thread's guard included, until it execs; when the exec fails it calls `_exit(127)`,
    /// which the shim interposes. That once ended the parent's trace and left its thread
    /// unrecorded. The parent's report is whole either way; a child whose exec failed gets no
    /// report of its own (memcheck, running the vfork as a fork, summarises it too).
    /// Also with a child that puts a file at descriptor 1000, the trace's number in the parent:
    /// its dup2 and fcntl, run on the parent's memory, must leave the parent's trace where it is.
    @Test(arguments: ["/nonexistent/program", "leak_basic"], [false, true])
    func vforkChild(_ program: String, takesDescriptor: Bool) throws {
        let execs = program == "leak_basic"
        let path = execs ? Harness.fixture(program) : program
        let environment = takesDescriptor ? ["VFORK_TAKES_DESCRIPTOR": "1000"] : [:]
        let (outcome, report) = try Harness.run([Harness.fixture("vfork_exec"), path], environment: environment)
        #expect(outcome.status == (execs ? 0 : 127))
        try #require(report.processes.count == (execs ? 2 : 1))
        let parent = report.processes[0]
        #expect(parent.exitStatus == (execs ? 0 : 127))
        #expect(parent.complete)
        #expect(HeapFigures(parent) == HeapFigures(bytes: 96, blocks: 2, allocs: 2, frees: 0, bytesAllocated: 96))
        try parent.expectRecord("before_vfork", bytes: 32, blocks: 1, file: "vfork_exec.c", line: 29,
                                caller: ("main", "vfork_exec.c", 52))
        try parent.expectRecord("after_vfork", bytes: 64, blocks: 1, file: "vfork_exec.c", line: 36,
                                caller: ("main", "vfork_exec.c", 64))
        #expect(parent.records.count == 2)
        if execs {
            let child = report.processes[1]
            #expect(child.command == [path])
            #expect(child.parentPid == parent.pid)
            #expect(child.complete)
            #expect(HeapFigures(child) == TraceInputTests.leakBasic)
        }
    }

    /// A trace directory given as a relative path, and a program that changes directory before
    /// it starts a child. Preloaded by hand (`HEAPGATE_OUT=traces`), the shim resolves the path
    /// when the process starts, so the fork child's trace lands beside its parent's; it was
    /// looked up from the new working directory, which has no `traces`, and the child was lost.
    @Test func relativeTraceDirectoryAndForkAfterChdir() throws {
        try Harness.withTemporaryDirectory { directory in
            try FileManager.default.createDirectory(atPath: directory + "/elsewhere", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: directory + "/traces", withIntermediateDirectories: true)
            let outcome = try Harness.execute(Harness.fixture("chdir_fork"), ["elsewhere"],
                                              environment: ["LD_PRELOAD": Harness.shim, "HEAPGATE_OUT": "traces"],
                                              directory: directory)
            #expect(outcome.status == 0)
            let (summary, report) = try Harness.summary([directory + "/traces"])
            #expect(summary.status == 0)
            let processes = try #require(report?.processes)
            try #require(processes.count == 2, "the parent and its fork child")
            let parent = processes[0], child = processes[1]
            #expect(child.parentPid == parent.pid)
            #expect(HeapFigures(parent) == HeapFigures(bytes: 10, blocks: 1, allocs: 1, frees: 0, bytesAllocated: 10))
            #expect(HeapFigures(child) == HeapFigures(bytes: 30, blocks: 2, allocs: 2, frees: 0, bytesAllocated: 30))
            try child.expectRecord("in_child", bytes: 20, blocks: 1, file: "chdir_fork.c", line: 31,
                                   caller: ("main", "chdir_fork.c", 47))
        }
    }

    /// The shim preloaded by a relative path (`LD_PRELOAD=lib/libheapgate.so`), and the report
    /// made from another directory: the trace names the shim by its absolute path, so the
    /// report still names its entry points (frame 0 of every record). The path was recorded as
    /// the loader had it, and frame 0 read "???".
    @Test func relativePreloadPathReportedFromElsewhere() throws {
        try Harness.withTemporaryDirectory { directory in
            try FileManager.default.createDirectory(atPath: directory + "/lib", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Harness.shim, toPath: directory + "/lib/libheapgate.so")
            let outcome = try Harness.execute(Harness.fixture("leak_basic"), [],
                                              environment: ["LD_PRELOAD": "lib/libheapgate.so", "HEAPGATE_OUT": directory],
                                              directory: directory)
            #expect(outcome.status == 0)
            let (summary, report) = try Harness.summary([directory], flags: ["--show-leak-kinds=all"])
            #expect(summary.status == 0)
            let process = try #require(report?.processes.first)
            #expect(HeapFigures(process) == TraceInputTests.leakBasic)
            try #require(process.records.count == 3)
            #expect(process.records.map { $0.frames.first?.function } .sorted { ($0 ?? "") < ($1 ?? "") } == ["calloc", "malloc", "malloc"])
            try process.expectRecord("leak_name", bytes: 24, blocks: 1, file: "leak_basic.c", line: 24)
        }
    }

    /// The same through `heapgate run --trace-dir=traces`, where the child then execs another
    /// program: heapgate hands the processes an absolute path. The exec'd image looked the
    /// relative one up from its own working directory, and its report was missing.
    @Test func relativeTraceDirectoryAndExecAfterChdir() throws {
        try Harness.withTemporaryDirectory { directory in
            try FileManager.default.createDirectory(atPath: directory + "/elsewhere", withIntermediateDirectories: true)
            let program = Harness.fixture("leak_basic")
            let (outcome, report) = try Harness.runReport([Harness.fixture("chdir_fork"), "elsewhere", program],
                                                          flags: ["--trace-dir=traces"], directory: directory)
            #expect(outcome.status == 0)
            let processes = try #require(report?.processes)
            try #require(processes.count == 2, "chdir_fork and leak_basic, exec'd in its child")
            #expect(HeapFigures(processes[0]) == HeapFigures(bytes: 10, blocks: 1, allocs: 1, frees: 0, bytesAllocated: 10))
            #expect(processes[1].command == [program])
            #expect(HeapFigures(processes[1]) == TraceInputTests.leakBasic)
            // The child's image before the exec, which allocated and exec'd at once, left no
            // trace: a fork child's trace starts late, and that image is never reported.
            #expect(Harness.traceFiles(in: directory + "/traces").count == 2)
        }
    }

    /// A process killed between the shim's creating its trace file and writing it (Python's
    /// multiprocessing ends its pool's workers so) leaves an empty file: a warning that says
    /// so, where it was "empty file, not a heapgate trace", and the rest of the report.
    @Test func emptyTraceOfAProcessKilledAtItsStart() throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--", "/bin/sh", "-c", ": > \"$HEAPGATE_OUT/heapgate.424242.trace\""])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("heapgate: warning: process 424242 ended before its trace began (an empty trace file): nothing to report for it\n"),
                "\(outcome.stderr)")
        #expect(!outcome.stderr.contains("not a heapgate trace"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("HEAP SUMMARY:"), "\(outcome.stderr)")
    }

    /// Fork children killed with SIGKILL 8-27 ms after the fork: around the 10 ms at which a
    /// fork child's trace starts, while it restates the 100,000 blocks it inherited. The file
    /// is now created when its first bytes go out, so a child killed before leaves none; it
    /// used to leave an empty file (in 1 run of 6 here, and in most runs of a Python fork pool
    /// ended by terminate()), which heapgate had to explain. Every trace written is readable,
    /// and the parent's report is whole. (It catches the old behaviour only now and then.)
    @Test func forkChildrenKilledWhileTheirTracesStart() throws {
        try Harness.withTemporaryDirectory { traces in
            let (outcome, report) = try Harness.run([Harness.fixture("killed_while_starting"), "20", "100000"],
                                                    flags: ["--trace-dir=\(traces)"])
            #expect(outcome.status == 0)
            #expect(outcome.stdoutText == "killed_while_starting: 20 children killed\n")
            #expect(!outcome.stderr.contains("ended before its trace began"), "\(outcome.stderrLines.filter { $0.hasPrefix("heapgate") })")
            for file in Harness.traceFiles(in: traces) {
                let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
                #expect(size > 0, "\(file) is empty")
            }
            let root = try #require(report.processes.first)
            #expect(root.command == [Harness.fixture("killed_while_starting"), "20", "100000"])
            #expect(root.complete)
            try root.expectRecord("leak_in_parent", bytes: 48, blocks: 1, file: "killed_while_starting.c", line: 25,
                                  caller: ("main", "killed_while_starting.c", 47))
        }
    }

    /// A --trace-dir used again keeps the earlier run's trace beside the new one; the report is
    /// of this run's processes only (the earlier one was reported again, and counted for the gate).
    @Test func traceDirectoryUsedAgainReportsThisRunOnly() throws {
        try Harness.withTemporaryDirectory { traces in
            let (first, _) = try Harness.runReport([Harness.fixture("leak_basic")], flags: ["--trace-dir=\(traces)"])
            #expect(first.status == 0)
            let (second, report) = try Harness.runReport([Harness.fixture("exit_status"), "3"],
                                                         flags: ["--trace-dir=\(traces)", "--error-exitcode=9"])
            #expect(second.status == 3, "leak_basic's definite leaks are not this run's: \(second.stderr)")
            let processes = try #require(report?.processes)
            #expect(processes.map(\.command) == [[Harness.fixture("exit_status"), "3"]])
            #expect(Harness.traceFiles(in: traces).count == 2)
        }
    }

    /// `fork_lingers`: a fork child's trace starts once the child has lived 10 ms or filled a
    /// mebibyte of ring, or at its exit. This child allocates for 20 ms and more, then waits and
    /// is killed before any exit: its trace, incomplete, still holds every event up to its wait.
    @Test func forkChildThatLivesOnAndIsKilled() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("fork_lingers")])
        #expect(outcome.status == 0)
        let processes = report.processes
        try #require(processes.count == 2, "the parent and its fork child")
        let parent = processes[0], child = processes[1]
        #expect(child.parentPid == parent.pid)
        #expect(parent.complete)
        #expect(HeapFigures(parent) == HeapFigures(bytes: 16, blocks: 1, allocs: 1, frees: 0, bytesAllocated: 16))
        #expect(!child.complete)
        #expect(HeapFigures(child) == HeapFigures(bytes: 64, blocks: 2, allocs: 202, frees: 200, bytesAllocated: 2064))
        try child.expectRecord("in_child", bytes: 48, blocks: 1, file: "fork_lingers.c", line: 37,
                               caller: ("main", "fork_lingers.c", 59))
    }

    /// `fork_lingers outlive`: the parent exits and leaves its child running (a daemon).
    /// `heapgate run` reports when the process it started ends, as a shell returns; the child's
    /// report can only be of what it did so far, and heapgate says so, and how to get the rest.
    @Test func forkChildThatOutlivesTheStartedProcess() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("fork_lingers"), "outlive"])
        #expect(outcome.status == 0)
        let processes = report.processes
        try #require(processes.count == 2, "the parent and its fork child")
        let child = processes[1]
        #expect(!child.complete)
        #expect(outcome.stderrLines.contains(
            "heapgate: warning: process \(child.pid) is still running, so its report covers only what it did until now"
            + " (it outlived the process heapgate started); to report it when it ends, keep its trace with"
            + " --trace-dir=DIR and run `heapgate summary DIR` once it has exited"), "\(outcome.stderr)")
    }

    /// `main_thread_exit`: the main thread leaves by pthread_exit and the process ends when
    /// the worker, its last thread, returns. glibc ends a process when its last thread ends,
    /// and the shim's drain thread was that last thread: the program never ended (and, every
    /// signal blocked on that thread, only SIGKILL stopped it). Figures are valgrind's without
    /// freeres, plus the 32 bytes of DTV seen in `threads`.
    /// Under `timeout -s KILL`, so that the hang this guards against fails the test instead of
    /// holding up the suite (it sends the signal to the whole process group).
    @Test func mainThreadLeavesFirst() throws {
        let scratch = Harness.temporaryDirectory()
        defer { Harness.removeTemporary(scratch) }
        let outcome = try Harness.execute("/usr/bin/timeout", ["-s", "KILL", "30", Harness.heapgate, "run",
                                                               "--json=\(scratch)/report.json", "--", Harness.fixture("main_thread_exit")])
        #expect(outcome.status == 0, "137: killed after 30 s")
        let report = try #require(try Harness.decodeReport(atPath: scratch + "/report.json"))
        #expect(outcome.stdoutText == "main_thread_exit: worker done\n")
        let process = try #require(report.processes.first)
        #expect(process.complete)
        #expect(HeapFigures(process) == HeapFigures(bytes: 4_462, blocks: 9, allocs: 10, frees: 1, bytesAllocated: 4_470))
        try process.expectRecord("before_leaving", bytes: 8, blocks: 1, file: "main_thread_exit.c", line: 21,
                                 caller: ("main", "main_thread_exit.c", 45))
        try process.expectRecord("in_worker", bytes: 24, blocks: 1, file: "main_thread_exit.c", line: 28,
                                 caller: ("worker", "main_thread_exit.c", 37))
        // The scan runs on the last thread, after the main thread has gone: it must read this
        // thread's view of the memory (/proc/self/maps is empty then, and process_vm_readv by the
        // process id fails). Before, it found no roots: ld.so's dlopen data for libgcc_s was
        // 1,822 bytes in 5 blocks indirectly lost. valgrind: 32 bytes in 2 blocks definitely lost.
        let leaks = try #require(process.leaks)
        #expect(leaks.definite == Report.Amount(bytes: 32, blocks: 2))
        #expect(leaks.indirect == Report.Amount(bytes: 0, blocks: 0))
        #expect(leaks.possible == Report.Amount(bytes: 0, blocks: 0))
    }

    /// The plugin is dlclose'd before exit, yet its leak is symbolized (memcheck needs
    /// --keep-debuginfo=yes for that). Totals are the "no freeres" row of EXPECTED.md: the
    /// other in-use block is ld.so's 2,304-byte dlopen data, and ld.so keeps three copies of
    /// the plugin's path while it is loaded, so bytes allocated depend on that path's length.
    @Test func dlopenLeak() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("dlopen_leak")])
        #expect(outcome.status == 0)
        try #require(report.processes.count == 1)
        let process = report.processes[0]
        #expect(process.complete)
        try process.expectRecord("plugin_leak", bytes: 40, blocks: 1, file: "libplugin.c", line: 14,
                                 caller: ("main", "dlopen_leak.c", 57))
        let pluginRecord = try #require(process.records(allocatedIn: "plugin_leak").first)
        let pluginFrame = try #require(pluginRecord.frames.first { $0.function == "plugin_leak" })
        #expect(pluginFrame.module?.hasSuffix("/libplugin.so") == true)

        // dlopen_leak finds the plugin beside /proc/self/exe, so the path is the canonical one.
        let pluginPath = Harness.realPath(Harness.fixture("libplugin.so"))
        let bytesAllocated = 3_704 + 3 * UInt64(pluginPath.utf8.count + 1)
        #expect(HeapFigures(process) == HeapFigures(bytes: 2_344, blocks: 2, allocs: 8, frees: 6, bytesAllocated: bytesAllocated))
    }

    /// 8 threads with cross-thread frees: the events of all threads must be applied in an
    /// order that never frees a block before its allocation. Three runs in a row, to give
    /// ordering races a chance to show.
    @Test func threads() throws {
        for round in 1...3 {
            let process = try soleProcess(of: "threads", round: round)
            #expect(process.complete, "round \(round)")
            try process.expectRecord("thread_leak", bytes: 256, blocks: 8, file: "threads.c", line: 34,
                                     caller: ("worker", "threads.c", 71))
            // 8,808 allocations by the program and one DTV per thread (pthread_create).
            #expect(process.heap.allocs == 8_816, "round \(round)")
            // valgrind says 1,128,320. heapgate's shim and libunwind each add a TLS module to the
            // process, so each thread's DTV (calloc'ed by _dl_allocate_tls) has two more 16-byte
            // slots: 32 bytes more per thread than under valgrind.
            #expect(process.heap.bytesAllocated == 1_128_320 + 8 * 32, "round \(round)")
            // Every free matched a block: nothing freed twice or before it was allocated.
            #expect(process.heap.frees + process.heap.inUseAtExit.blocks == process.heap.allocs, "round \(round)")
        }
    }

    /// Blocks handed to a second thread the moment it starts, freed there, their addresses
    /// allocated again on it while main allocates and frees too. Any order of the two
    /// threads' events but the real one shows: a free before its allocation leaves a block
    /// in use too many, a block handed out again before its free was applied has the wrong
    /// size or stack. Figures are valgrind's without freeres (EXPECTED.md). Three runs.
    @Test func handoffAcrossThreads() throws {
        for round in 1...3 {
            let process = try soleProcess(of: "handoff", round: round)
            try process.expectRecord("leaked_by_worker", bytes: 320, blocks: 20, file: "handoff.c", line: 34,
                                     caller: ("worker", "handoff.c", 50))
            // valgrind: 592 B in 21 blocks, 81,600,320 bytes allocated: the worker's DTV is
            // 32 bytes larger under heapgate (see threads()).
            #expect(HeapFigures(process) == HeapFigures(bytes: 592 + 32, blocks: 21, allocs: 600_003, frees: 599_982,
                                                        bytesAllocated: 81_600_320 + 32), "round \(round)")
        }
    }

    /// Threads started by a library's constructor allocate before heapgate has a drain thread
    /// (every thread then claims in the solo ring) and go on while it starts (the first thread
    /// to record becomes the solo ring's owner, which claims without a locked instruction; a
    /// push begun without a consumer must not be under way then). Every event is recorded or,
    /// when the ring filled before the drain ran, counted as lost: none twice, none missing,
    /// no free before its allocation. Three runs.
    @Test func threadsFromALibraryConstructor() throws {
        for round in 1...3 {
            let process = try soleProcess(of: "ctor_threads", round: round)
            #expect(process.complete, "round \(round)")
            try process.expectRecord("leak_after_start", bytes: 77, blocks: 1, file: "ctor_threads.c", line: 21,
                                     caller: ("main", "ctor_threads.c", 31))
            #expect(process.heap.allocs + process.heap.frees + process.statistics.lostEvents == 1_800_005,
                    "round \(round)")
        }
    }

    /// A fork while the worker's events, and many of main's, are still on their way to the
    /// drain (in both rings: main's in the solo ring, the worker's in the shared one). The
    /// child starts from the heap at the fork, every block with its stack, and frees 100,999
    /// of them itself: a block missed, counted twice or freed before its allocation shows
    /// in the figures. Valgrind's without freeres (EXPECTED.md), the DTV 32 bytes larger
    /// (see threads()). Three runs.
    @Test func forkWhileThreadsRecord() throws {
        for round in 1...3 {
            let (outcome, report) = try Harness.run([Harness.fixture("fork_threads")])
            #expect(outcome.status == 0, "round \(round)")
            #expect(outcome.stdoutText == "fork_threads: done\n", "round \(round)")
            try #require(report.processes.count == 2, "round \(round)")
            let parent = report.processes[0], child = report.processes[1]
            #expect(HeapFigures(parent) == HeapFigures(bytes: 336 + 32, blocks: 2, allocs: 101_001, frees: 100_999,
                                                       bytesAllocated: 13_664_272 + 32), "round \(round)")
            #expect(child.parentPid == parent.pid)
            #expect(child.complete, "round \(round)")
            #expect(HeapFigures(child) == HeapFigures(bytes: 384 + 32, blocks: 3, allocs: 101_002, frees: 100_999,
                                                      bytesAllocated: 13_664_320 + 32), "round \(round)")
            for process in [parent, child] {
                try process.expectRecord("leaked_by_worker", bytes: 64, blocks: 1, file: "fork_threads.c", line: 44,
                                         caller: ("worker", "fork_threads.c", 61))
            }
            try child.expectRecord("child_leak", bytes: 48, blocks: 1, file: "fork_threads.c", line: 51,
                                   caller: ("main", "fork_threads.c", 96))
            #expect(parent.records(allocatedIn: "child_leak").isEmpty, "round \(round)")
        }
    }

    /// Four threads fork children that end at once, one thread's fork right after another's,
    /// while two threads allocate. The shim pauses its drain thread for each fork; a fork that
    /// took the pause before it for its own (the drain thread was leaving it) forked while the
    /// drain made a pass, and its child, ending before its trace started, waited for ever to
    /// take the drain over. The fixture kills a child that takes 10 s and exits 1. Before the
    /// fix, 1 child in about 1,500 hung (the spawn probe: 1 run in 3 to 15 of 100 forks, 2 in 8
    /// of this fixture on a quiet machine); a drain slowed on leaving each pause (a probe build)
    /// hung 2 or 3 children in every run of 200. 400 children; every child ends and reports its
    /// own leak and the parent's (memcheck: 16 B in the parent, 40 B in 2 blocks in each
    /// child), and may hold a 48-byte block an allocating thread had at the fork.
    @Test func forksFromSeveralThreadsEnd() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("forks_from_threads"), "100"])
        #expect(outcome.status == 0, "\(outcome.stderr.suffix(2000))")
        #expect(outcome.stdoutText == "forks_from_threads: 400 children, 0 hung\n")
        try #require(report.processes.count == 401)
        let parent = report.processes[0]
        try parent.expectRecord("parent_leak", bytes: 16, blocks: 1, file: "forks_from_threads.c", line: 38,
                                caller: ("main", "forks_from_threads.c", 103))
        #expect(parent.records(allocatedIn: "child_leak").isEmpty)
        for child in report.processes.dropFirst() {
            #expect(child.parentPid == parent.pid)
            #expect(child.complete, "pid \(child.pid)")
            try child.expectRecord("child_leak", bytes: 24, blocks: 1, file: "forks_from_threads.c", line: 44,
                                   caller: ("fork_children", "forks_from_threads.c", 85))
            try child.expectRecord("parent_leak", bytes: 16, blocks: 1, file: "forks_from_threads.c", line: 38,
                                   caller: ("main", "forks_from_threads.c", 103))
        }
    }

    /// A thread forks in a loop while main exits. The exit takes the drain over between its
    /// passes, also while the drain thread is paused for a fork; the thread then leaves, and the
    /// next fork, whose prepare handler still saw a drain, waited for ever for a pause, holding
    /// the loader's lock, which the exit's leak scan then waited for in dladdr: the process hung
    /// (13 rounds in 20 of a probe, and before the hold-back's longer take-over 4 in 10; none
    /// before the loader's lock was held across fork, whose exit went on and ended the waiting
    /// thread). The fixture stops at the first round that takes 10 s. Each round is its own
    /// image (exec'd), so every one is reported and complete; children forked during an exit
    /// are killed before their traces start.
    @Test func forkWhileTheProcessExitsEnds() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("forks_at_exit"), "30"])
        #expect(outcome.status == 0, "\(outcome.stderr.suffix(2000))")
        #expect(outcome.stdoutText == "forks_at_exit: 30 rounds, 0 hung\n")
        #expect(report.processes.count == 31)
        for process in report.processes {
            #expect(process.complete, "pid \(process.pid)")
        }
    }

    /// A child forked while another thread of its parent frees or reallocates still has that
    /// thread's block: memcheck reports it in use in every child that finds it in `current`
    /// (48 bytes from begin_block, or 4,000 grown by realloc, called from worker). heapgate
    /// records a free before glibc makes it, glibc's fork stops the thread at its arena's lock
    /// in between, and a thread writing to memory the fork made copy-on-write waits in the
    /// page fault: 130 of 133 such children had lost the block before the shim's threads said
    /// what they had under way (CShim/hg_in_flight.c), 0 or 1 in 120 since, in 10 runs. The
    /// few instructions between glibc's return and the thread's next store are not covered,
    /// so up to 1 in 20 may miss it. Children that hold no block are not checked: one forked
    /// between the worker's malloc and its store may hold one all the same.
    @Test func childKeepsTheBlockAnotherThreadWasFreeing() throws {
        try Self.expectChildrenKeepTheWorkersBlock(["200"])
    }

    /// The same after 1,600 threads have ended one after another, each on a stack of its own
    /// size (so that none reused an ended one's TLS address): the registry of in-flight records
    /// kept every ended thread's entry, filled its 1,024 entries with threads that had ended, and
    /// the worker, started after, had no entry: its children lost its block as before the
    /// records (123 of 131 such children). A thread's entry is given back at its exit.
    @Test func childKeepsTheBlockOfAThreadStartedAfterManyEnded() throws {
        try Self.expectChildrenKeepTheWorkersBlock(["200", "1", "1600"])
    }

    /// Runs fork_mid_hold with one worker (200 children) and expects every child that found the
    /// worker's block published (but up to 1 in 20) to report exactly one block from worker().
    private static func expectChildrenKeepTheWorkersBlock(_ arguments: [String]) throws {
        let (outcome, report) = try Harness.run([Harness.fixture("fork_mid_hold")] + arguments,
                                                flags: ["--show-leak-kinds=all"])
        #expect(outcome.status == 0, "\(outcome.stderr.suffix(2000))")
        #expect(outcome.stdoutText.hasSuffix("fork_mid_hold: 200 children\n"))
        try #require(report.processes.count == 201)
        let holding = Set(outcome.stdoutText.split(separator: "\n").compactMap { line -> Int? in
            let words = line.split(separator: " ")
            return words.count == 5 && words[0] == "child" && words[2...] == ["holds", "1", "blocks"] ? Int(words[1]) : nil
        })
        #expect(holding.count > 20, "children that held a block: \(holding.count)")
        var missing = 0
        for child in report.processes.dropFirst() where holding.contains(child.pid) {
            #expect(child.complete, "pid \(child.pid)")
            if child.records(allocatedIn: "worker").reduce(0, { $0 + $1.blocks }) != 1 { missing += 1 }
        }
        #expect(missing * 20 <= holding.count, "children of \(holding.count) that lost the worker's block: \(missing)")
    }

    /// The same with 150 threads each cut short by the fork: every child has every block its
    /// globals hold in use (memcheck: each worker's block of the moment, one per worker, 20 of 20
    /// with 20 workers). The fork child read at most 64 threads' records (hg_drain.c's
    /// HG_CUT_MAX), and the rest of the threads' blocks were lost: about 64 of the ~145 blocks
    /// each child held were in use. As in childKeepsTheBlockAnotherThreadWasFreeing, the
    /// instructions between glibc's return and the thread's next store are not covered: up to
    /// 1 block in 100 may be missed.
    @Test func childKeepsTheBlocksOfManyThreadsCutShort() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("fork_mid_hold"), "10", "150"],
                                                flags: ["--show-leak-kinds=all"])
        #expect(outcome.status == 0, "\(outcome.stderr.suffix(2000))")
        #expect(outcome.stdoutText.hasSuffix("fork_mid_hold: 10 children\n"))
        try #require(report.processes.count == 11)
        var held: [Int: Int] = [:]
        for line in outcome.stdoutText.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count == 5 && words[0] == "child" && words[2] == "holds", let pid = Int(words[1]), let blocks = Int(words[3]) {
                held[pid] = blocks
            }
        }
        try #require(held.count == 10)
        var heldInAll = 0, missing = 0
        for child in report.processes.dropFirst() {
            #expect(child.complete, "pid \(child.pid)")
            let holds = try #require(held[child.pid], "pid \(child.pid)")
            let inUse = Int(child.records(allocatedIn: "worker").reduce(0) { $0 + $1.blocks })
            heldInAll += holds
            missing += max(0, holds - inUse)
        }
        #expect(heldInAll > 500, "blocks the children held: \(heldInAll)")
        #expect(missing * 100 <= heldInAll, "blocks of \(heldInAll) the children lost: \(missing)")
    }

    /// Runs a fixture that exits 0 as a single process, and gives that process's report.
    private func soleProcess(of fixture: String, round: Int) throws -> Report.Process {
        let (outcome, report) = try Harness.run([Harness.fixture(fixture)])
        #expect(outcome.status == 0, "round \(round)")
        try #require(report.processes.count == 1, "round \(round)")
        return report.processes[0]
    }

    /// A musl program started by a traced one runs, untraced: musl's loader opens the preload
    /// path's "$LIB" literally and finds a stub, where glibc's expands it and finds the shim.
    /// Given the shim itself, musl's loader stopped with an error: the child never ran
    /// (status 127), and a process tree that contains one failed under heapgate.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Harness.fixture("hello_musl")),
                   "hello_musl was not built: no musl-gcc (musl-tools; scripts/build-fixtures.sh says so)"))
    func muslChildStarts() throws {
        let script = Harness.fixture("hello_musl") + "; echo \"status $?\""
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--", "/bin/sh", "-c", script])
        #expect(outcome.status == 0)
        #expect(outcome.stdoutText == "hello from musl\nstatus 0\n")
        #expect(!outcome.stderr.contains("Error"), "\(outcome.stderr)")
        // The shell itself, linked against glibc, is traced.
        #expect(outcome.stderr.contains("Command: /bin/sh -c"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("HEAP SUMMARY"))
    }

    /// A 32-bit program started by a traced one runs untraced and without a word from its
    /// loader: that loader expands the preload path's $LIB to its own directory (lib32 for
    /// Debian's libc6-i386), where `make` put a 32-bit stub. With the 64-bit shim's own path,
    /// it printed "ERROR: ld.so: object … cannot be preloaded (wrong ELF class: ELFCLASS64)"
    /// on the program's stderr.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Harness.fixture("hello_i386_dynamic"))
                   && FileManager.default.fileExists(atPath: "/lib/ld-linux.so.2"),
                   "needs hello_i386_dynamic (a compiler with -m32) and a 32-bit loader (libc6-i386)"))
    func thirtyTwoBitChildRunsQuietly() throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--", "/bin/sh", "-c", Harness.fixture("hello_i386_dynamic")])
        #expect(outcome.status == 0)
        #expect(outcome.stdoutText == "hello from a 32-bit program\n")
        #expect(!outcome.stderr.contains("ld.so"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("Command: /bin/sh -c"), "\(outcome.stderr)")
    }
}
