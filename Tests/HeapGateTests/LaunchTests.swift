import Foundation
import Testing

/// `heapgate run` behaves like running the program directly: the same output, input and exit
/// status, shell-like statuses when the program cannot be started, and tracing that never
/// disturbs the program (its descriptors, errno, or a trace directory it cannot write).
@Suite("Launching programs under heapgate")
struct LaunchTests {
    // MARK: Exit status

    @Test func exitStatusPassesThrough() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("exit_status"), "7"])
        #expect(outcome.status == 7)
        let process = try #require(report.processes.first)
        #expect(report.processes.count == 1)
        #expect(process.exitStatus == 7)
        #expect(process.complete)
    }

    /// A process killed by a signal runs no exit code, so its trace is cut off: heapgate exits
    /// as a shell would (128 + N) and its report says the process did not complete.
    @Test(arguments: [(signal: 11, status: Int32(139)), (signal: 6, status: Int32(134))])
    func deathBySignal(signal: Int, status: Int32) throws {
        let (outcome, report) = try Harness.runReport([Harness.fixture("exit_status"), "signal", "\(signal)"])
        #expect(outcome.status == status)
        let written = try #require(report, "no JSON report; stderr: \(outcome.stderr)")
        let process = try #require(written.processes.first, "no process in the report; stderr: \(outcome.stderr)")
        #expect(written.processes.count == 1)
        #expect(process.exitStatus == Int(status))
        #expect(!process.complete)
        // Whatever was recorded before the signal can only be part of the one 100-byte block.
        #expect(process.heap.allocs <= 1)
        #expect(process.heap.inUseAtExit.bytes <= 100)
    }

    // MARK: Standard streams

    /// stdout is byte for byte the program's; stderr is the program's followed by the report.
    @Test func outputPassesThroughUnchanged() throws {
        let command = [Harness.fixture("prints_a_lot"), "3"]
        let native = try Harness.execute(command[0], Array(command.dropFirst()))
        let (traced, report) = try Harness.run(command)
        #expect(native.status == 3)
        #expect(traced.status == 3)
        #expect(report.processes.first?.exitStatus == 3)
        #expect(native.stdout.count == 786_432)
        expectSameBytes(traced.stdout, native.stdout, "stdout")
        try expectProgramStderrThenReport(traced, native: native)
    }

    @Test func stdinPassesThrough() throws {
        // 300,000 deterministic bytes, more than a pipe holds, so the program has to read them
        // while heapgate is running.
        let input = Data((0..<300_000).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) })
        let command = [Harness.fixture("prints_a_lot"), "0", "--stdin"]
        let native = try Harness.execute(command[0], Array(command.dropFirst()), input: input)
        let (traced, _) = try Harness.run(command, input: input)
        let expected = "stdin: 300000 bytes fnv1a64 " + hex16(Harness.fnv1a64(input))
        #expect(lastLine(native.stdoutText) == expected)
        #expect(lastLine(traced.stdoutText) == expected)
        expectSameBytes(traced.stdout, native.stdout, "stdout")
        #expect(traced.status == 0)
        try expectProgramStderrThenReport(traced, native: native)
    }

    @Test func shellCommand() throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--", "/bin/sh", "-c", "echo heapgate-smoke; exit 3"])
        #expect(outcome.stdoutText == "heapgate-smoke\n")
        #expect(outcome.status == 3)
        #expect(outcome.stderr.contains("HEAP SUMMARY:"))
    }

    /// `run -- PROGRAM` skips swift-argument-parser (HeapGateMain) and must give exactly what
    /// the parsed form with the default flags spelled out gives: report and status. The
    /// programs tell the defaults apart: deep_stack's stack is cut at --num-callers (12), and
    /// the shell leaves still-reachable blocks, which --show-leak-kinds=all would list.
    @Test func everydayFormMatchesTheParsedDefaults() throws {
        for program in [[Harness.fixture("deep_stack")], ["/bin/sh", "-c", "exit 3"]] {
            let fast = try Harness.execute(Harness.heapgate, ["run", "--"] + program)
            let parsed = try Harness.execute(Harness.heapgate, ["run", "--num-callers=12", "--leak-check=full",
                                                                "--show-leak-kinds=definite,possible", "--"] + program)
            func normalized(_ text: String) -> String {
                text.replacing(#/==\d+==/#, with: "==PID==").replacing(#/0x[0-9A-Fa-f]+/#, with: "0xADDRESS")
            }
            #expect(fast.status == parsed.status)
            #expect(fast.stdout == parsed.stdout)
            #expect(fast.stderr.contains("HEAP SUMMARY:"))
            #expect(normalized(fast.stderr) == normalized(parsed.stderr))
        }
    }

    // MARK: Programs that cannot be started

    @Test func commandNotFound() throws {
        let name = "heapgate-no-such-command-\(UUID().uuidString)"
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--", name])
        #expect(outcome.status == 127)
        #expect(outcome.stdout.isEmpty)
        #expect(outcome.stderrLines.count == 1, "\(outcome.stderr)")
        #expect(outcome.stderr.hasPrefix("heapgate: "))
        #expect(outcome.stderr.contains("command not found"))
        #expect(outcome.stderr.contains(name))
    }

    /// The command is captured from the first argument heapgate does not know: a mistyped option,
    /// or a valgrind option heapgate lacks, is a bad command line (64), never run as the program.
    @Test(arguments: [
        (["--track-origins=yes", "--"], "unknown option '--track-origins=yes' (heapgate checks for leaks, not for uses of uninitialised memory)"),
        (["--no-such-option"], "unknown option '--no-such-option'"),
    ])
    func unknownOptionIsABadCommandLine(options: [String], message: String) throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run"] + options + [Harness.fixture("exit_status"), "5"])
        #expect(outcome.status == 64)
        #expect(outcome.stderr.contains(message), "\(outcome.stderr)")
        #expect(!outcome.stderr.contains("HEAP SUMMARY"), "\(outcome.stderr)")
    }

    @Test func fileWithoutExecutePermission() throws {
        try Harness.withTemporaryDirectory { directory in
            let script = directory + "/not-executable.sh"
            try "#!/bin/sh\necho should-not-run\n".write(toFile: script, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: script)
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--", script])
            #expect(outcome.status == 126)
            #expect(outcome.stdout.isEmpty)
            #expect(outcome.stderrLines.count == 1, "\(outcome.stderr)")
            #expect(outcome.stderr.hasPrefix("heapgate: "))
            #expect(outcome.stderr.contains(script))
        }
    }

    /// A file the kernel will not run is 126 (a shell's "cannot execute"), a script whose
    /// interpreter is missing 127 (bash 5 and dash), one whose interpreter cannot be run (a directory) 126,
    /// each in one line naming what to fix: all were status 1, which a CI job cannot tell from
    /// the program's own 1, and the missing interpreter was reported as the script itself. A
    /// `#!` line with DOS line endings names `/bin/sh\r`: the carriage return is written out,
    /// where it used to reach the terminal and the message's end hid its start.
    @Test(arguments: [
        ("no_shebang.sh", Array("echo should-not-run\n".utf8), Int32(126),
         "cannot execute: Exec format error (not a program, nor a script that starts with #!)"),
        ("empty", [], 126, "cannot execute: Exec format error (not a program, nor a script that starts with #!)"),
        ("garbage", Array("garbage".utf8) + [0, 1], 126,
         "cannot execute: Exec format error (not a program, nor a script that starts with #!)"),
        ("bad_interpreter.sh", Array("#!/nonexistent/interp -x\necho should-not-run\n".utf8), 127,
         "bad interpreter /nonexistent/interp: No such file or directory"),
        ("interpreter_not_executable.sh", Array("#! /etc\necho should-not-run\n".utf8), 126,
         "bad interpreter /etc: Permission denied"),
        ("dos_line_endings.sh", Array("#!/bin/sh\r\necho should-not-run\r\n".utf8), 127,
         "bad interpreter /bin/sh\\r: No such file or directory (the #! line ends in a carriage return: the script has DOS line endings)"),
    ])
    func fileTheKernelWillNotRun(name: String, content: [UInt8], status: Int32, message: String) throws {
        try Harness.withTemporaryDirectory { directory in
            let path = directory + "/" + name
            try Data(content).write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--", path])
            #expect(outcome.status == status)
            #expect(outcome.stdoutText == "")
            #expect(outcome.stderr == "heapgate: \(path): \(message)\n")
        }
    }

    /// A program whose loader (PT_INTERP) is missing: 127 and bash's "required file not found".
    @Test func programWhoseLoaderIsMissing() throws {
        try Harness.withTemporaryDirectory { directory in
            let loader = Data("/lib64/ld-linux-x86-64.so.2".utf8)
            var program = try Data(contentsOf: URL(fileURLWithPath: "/bin/true"))
            let at = try #require(program.range(of: loader))
            program.replaceSubrange(at, with: Data("/lib64/ld-missing-x86-64.so.2".utf8.prefix(loader.count)))
            let path = directory + "/no_loader"
            try program.write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--", path])
            #expect(outcome.status == 127)
            #expect(outcome.stdoutText == "")
            #expect(outcome.stderr == "heapgate: \(path): cannot execute: required file not found (its loader, named in the file, is missing)\n")
        }
    }

    /// A FIFO with an execute bit: exec refuses it (126, as a shell says "Permission denied").
    /// heapgate read the file's ELF header first, and its open waited for a writer for ever.
    /// (Under `timeout`, so that a regression fails instead of hanging the suite.)
    @Test func fifoIsNotExecutable() throws {
        try Harness.withTemporaryDirectory { directory in
            let fifo = directory + "/fifo"
            try #require(mkfifo(fifo, 0o755) == 0)
            let outcome = try Harness.execute("/usr/bin/timeout", ["60", Harness.heapgate, "run", "--", fifo])
            #expect(outcome.status == 126)
            #expect(outcome.stdoutText == "")
            #expect(outcome.stderr == "heapgate: \(fifo): Permission denied\n")
        }
    }

    /// A directory is 126 with bash's words (valgrind: "is a directory"); heapgate said
    /// "Permission denied", which sent users to check the file's mode.
    @Test func directoryIsNotExecutable() throws {
        try Harness.withTemporaryDirectory { directory in
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--", directory])
            #expect(outcome.status == 126)
            #expect(outcome.stdout.isEmpty)
            #expect(outcome.stderr == "heapgate: \(directory): Is a directory\n")
        }
    }

    /// A static executable has no dynamic loader to honour LD_PRELOAD: heapgate refuses it
    /// (status 3) rather than run it and report an empty heap.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Harness.fixture("static_hello")),
                   "static_hello was not built: linking with `cc -static` needs libc.a (scripts/build-fixtures.sh says so)"))
    func staticallyLinkedProgram() throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--", Harness.fixture("static_hello")])
        #expect(outcome.status == 3)
        #expect(outcome.stdout.isEmpty, "the program must not be run")
        #expect(outcome.stderrLines.count == 1, "\(outcome.stderr)")
        #expect(outcome.stderr.hasPrefix("heapgate: "))
        #expect(outcome.stderr.contains("statically linked"))
        #expect(!outcome.stderr.contains("HEAP SUMMARY"))
    }

    /// A program for another ELF class or machine than the shim: the loader ignores a preload
    /// it cannot load and runs the program untraced. heapgate refuses it (status 3) as it does
    /// a static one, naming both targets, and does not run it. hello_i386 is a real 32-bit
    /// program (it runs natively where the kernel runs 32-bit code); the AArch64 one is only
    /// an ELF header, which is all heapgate reads before it would start a program.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Harness.fixture("hello_i386")),
                   "hello_i386 was not built: the compiler does not take -m32 (scripts/build-fixtures.sh says so)"))
    func programForAnotherArchitecture() throws {
        let i386 = Harness.fixture("hello_i386")
        try Harness.withTemporaryDirectory { directory in
            let aarch64 = directory + "/hello_aarch64"
            var header = [UInt8](repeating: 0, count: 64)
            header[0..<8] = [0x7f, 0x45, 0x4c, 0x46, 2 /* 64-bit */, 1 /* little-endian */, 1, 0]
            header[16] = 2 /* ET_EXEC */
            header[18] = 183 /* EM_AARCH64 */
            #expect(FileManager.default.createFile(atPath: aarch64, contents: Data(header),
                                                   attributes: [.posixPermissions: 0o755]))
            for (program, kind) in [(i386, "32-bit x86"), (aarch64, "AArch64")] {
                let outcome = try Harness.execute(Harness.heapgate, ["run", "--", program])
                #expect(outcome.status == 3, "\(kind)")
                #expect(outcome.stdout.isEmpty, "the program must not be run")
                #expect(outcome.stderrLines == ["heapgate: \(program) is a \(kind) program and libheapgate.so is built for x86-64: the loader cannot load heapgate into it, so nothing can be traced"])
            }
        }
    }

    /// A program linked against musl: musl's loader stops with an error when LD_PRELOAD names
    /// a library it cannot load (the glibc-linked shim), and the program never starts (status
    /// 127, a wall of "Error relocating" lines, then "wrote no trace"). heapgate says why,
    /// before it starts anything (status 3). Natively the fixture runs.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Harness.fixture("hello_musl")),
                   "hello_musl was not built: no musl-gcc (musl-tools; scripts/build-fixtures.sh says so)"))
    func muslProgram() throws {
        let program = Harness.fixture("hello_musl")
        let native = try Harness.execute(program, [])
        #expect(native.status == 0)
        #expect(native.stdoutText == "hello from musl\n")
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--", program])
        #expect(outcome.status == 3)
        #expect(outcome.stdout.isEmpty)
        #expect(outcome.stderrLines == ["heapgate: \(program) is linked against musl (its loader is /lib/ld-musl-x86_64.so.1) and libheapgate.so against glibc: musl's loader would refuse to start it with heapgate preloaded, so nothing can be traced"])
    }

    /// A set-user-ID program owned by another user starts in secure-execution mode, where the
    /// loader ignores LD_PRELOAD: heapgate says so (status 3) instead of running it untraced
    /// (it printed "wrote no trace" after the program had run, with the program's status 0).
    /// The same copy without the bit is traced. Needs root, to give the copy to nobody.
    @Test(.enabled(if: getuid() == 0, "needs root: the copy is given to another user"))
    func setUserIDProgram() throws {
        try Harness.withTemporaryDirectory { directory in
            let copy = directory + "/leak_basic"
            try FileManager.default.copyItem(atPath: Harness.fixture("leak_basic"), toPath: copy)
            #expect(chown(copy, 65534, 65534) == 0)
            #expect(chmod(copy, 0o4755) == 0)
            var volume = statvfs()
            #expect(statvfs(copy, &volume) == 0)
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--", copy])
            if volume.f_flag & UInt(ST_NOSUID) != 0 {
                // The bit changes nothing on this file system: the program is traced.
                #expect(outcome.status == 0 && outcome.stderr.contains("definitely lost: "), "\(outcome.stderr)")
            } else {
                #expect(outcome.status == 3)
                #expect(outcome.stdout.isEmpty, "the program must not be run")
                #expect(outcome.stderrLines == ["heapgate: \(copy) is set-user-ID (owner uid 65534): it runs in secure-execution mode, where the loader ignores LD_PRELOAD, so nothing can be traced (a copy made with cp can be)"])
            }
            #expect(chmod(copy, 0o755) == 0)
            let traced = try Harness.execute(Harness.heapgate, ["run", "--", copy])
            #expect(traced.status == 0)
            #expect(traced.stderr.contains("definitely lost: "), "\(traced.stderr)")

            // Linux ignores the bit on a script: its interpreter starts as usual, traced.
            let script = directory + "/script"
            #expect(FileManager.default.createFile(atPath: script, contents: Data("#!/bin/sh\necho from the script\n".utf8)))
            #expect(chown(script, 65534, 65534) == 0)
            #expect(chmod(script, 0o4755) == 0)
            let interpreted = try Harness.execute(Harness.heapgate, ["run", "--", script])
            #expect(interpreted.status == 0, "\(interpreted.stderr)")
            #expect(interpreted.stdoutText == "from the script\n")
            #expect(interpreted.stderr.contains("HEAP SUMMARY"), "\(interpreted.stderr)")
        }
    }

    /// The same for a program with file capabilities run by another user than root (Debian's
    /// `ping`): the kernel counts the capabilities it gains as a change of privilege. Root,
    /// which has them all already, traces it. Needs root, setcap and setpriv.
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/setcap")
                   && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
                   "needs root, setcap and setpriv (libcap2-bin, util-linux)"))
    func programWithFileCapabilities() throws {
        try Harness.withTemporaryDirectory { directory in
            #expect(chmod(directory, 0o755) == 0)
            let copy = directory + "/leak_basic"
            try FileManager.default.copyItem(atPath: Harness.fixture("leak_basic"), toPath: copy)
            let setcap = try Harness.execute("/usr/sbin/setcap", ["cap_net_raw+ep", copy])
            #expect(setcap.status == 0, "\(setcap.stderr)")
            // heapgate and its shim copied where nobody may run them: the checkout may not be.
            let fm = FileManager.default
            try fm.createDirectory(atPath: directory + "/bin", withIntermediateDirectories: true)
            try fm.createDirectory(atPath: directory + "/lib", withIntermediateDirectories: true)
            try fm.copyItem(atPath: Harness.heapgate, toPath: directory + "/bin/heapgate")
            try fm.copyItem(atPath: Harness.shim, toPath: directory + "/lib/libheapgate.so")
            let asNobody = try Harness.execute("/usr/bin/setpriv", [
                "--reuid=65534", "--regid=65534", "--clear-groups", directory + "/bin/heapgate", "run", "--", copy,
            ], environment: ["HOME": directory])
            #expect(asNobody.status == 3)
            #expect(asNobody.stdout.isEmpty, "the program must not be run")
            #expect(asNobody.stderrLines == ["heapgate: \(copy) is given file capabilities (getcap lists them): it runs in secure-execution mode, where the loader ignores LD_PRELOAD, so nothing can be traced (a copy made with cp can be)"])
            let asRoot = try Harness.execute(Harness.heapgate, ["run", "--", copy])
            #expect(asRoot.status == 0)
            #expect(asRoot.stderr.contains("definitely lost: "), "\(asRoot.stderr)")
        }
    }

    // MARK: Tracing does not disturb the program

    /// The program closes every descriptor above stderr (the trace's among them), opens files,
    /// and puts one on descriptor 1000; none of them may receive trace bytes.
    @Test func programThatClosesAllDescriptors() throws {
        try Harness.withTemporaryDirectory { directory in
            let (outcome, _) = try Harness.runReport([Harness.fixture("fd_hygiene"), directory])
            #expect(outcome.status == 0, "\(outcome.stderrLines.filter { $0.hasPrefix("fd_hygiene:") })")
            #expect(outcome.stdoutText == "fd_hygiene: ok\n")
            for name in ["first", "second", "third"] {
                let expected = (0..<200).map { name + " " + String(format: "%03d", $0) + "\n" }.joined()
                let content = FileManager.default.contents(atPath: directory + "/\(name).txt") ?? Data()
                #expect(content == Data(expected.utf8), "\(name).txt")
            }
        }
    }

    /// The program puts files at descriptors 1000 and 1001 by number (dup2, dup3) without
    /// closing anything first. Both numbers must look free before (fcntl and dup: EBADF, where
    /// the trace file and libunwind's pipe sat, open), fcntl F_DUPFD from 1000 must give 1000
    /// (it gave 1001, the kernel passing over the trace's number), every line must reach the
    /// program's files, and the trace, moved out of the way, must stay complete.
    @Test func programUsesDescriptorsAboveOneThousand() throws {
        try Harness.withTemporaryDirectory { directory in
            let (outcome, report) = try Harness.run([Harness.fixture("high_descriptors"), directory])
            #expect(outcome.status == 0, "\(outcome.stderrLines.filter { $0.hasPrefix("high_descriptors:") })")
            #expect(outcome.stdoutText == "high descriptors: ok\n")
            for name in ["dup2", "dup3"] {
                let expected = (0..<200).map { name + " " + String(format: "%03d", $0) + "\n" }.joined()
                let content = FileManager.default.contents(atPath: directory + "/\(name).txt") ?? Data()
                #expect(content == Data(expected.utf8), "\(name).txt")
            }
            let process = try #require(report.processes.first)
            #expect(process.complete)
            try process.expectRecord("leak_after_dup2", bytes: 48, blocks: 1, file: "high_descriptors.c", line: 33,
                                     caller: ("main", "high_descriptors.c", 101))
            // 200 blocks written from, two FILEs and their buffers, the leak, stdout's buffer
            // (valgrind: 206 allocs, 205 frees; its freeres frees stdout's buffer).
            #expect(process.heap.allocs == 206)
            #expect(process.heap.frees == 204)
        }
    }

    /// Threads put files at 1000-1003 by number while others allocate, and children forked
    /// meanwhile do the same at 1000. Each move of the trace excludes the writer's system calls
    /// and a fork: before, a flush that came between a move's two steps stopped the trace, and
    /// a child forked in between inherited a table and memory of different moments and wrote
    /// an empty trace (6 runs in 15 here had one or the other). Three runs; every process's
    /// trace complete, every line in the program's files.
    @Test func descriptorsTakenByNumberFromSeveralThreads() throws {
        for round in 1...3 {
            try Harness.withTemporaryDirectory { directory in
                let (outcome, report) = try Harness.run([Harness.fixture("descriptor_race"), directory, "20000"])
                #expect(outcome.status == 0, "round \(round): \(outcome.stderrLines.filter { $0.hasPrefix("descriptor_race") })")
                #expect(outcome.stdoutText == "descriptor race: ok\n", "round \(round)")
                #expect(!outcome.stderr.contains("ended before its trace began"), "round \(round)")
                #expect(report.processes.count >= 2, "round \(round): no child traced")
                for process in report.processes { #expect(process.complete, "round \(round): \(process.pid)") }
                let parent = try #require(report.processes.first { $0.command.count == 3 })
                try parent.expectRecord("leak_after_race", bytes: 91, blocks: 1, file: "descriptor_race.c", line: 29,
                                        caller: ("main", "descriptor_race.c", 115))
            }
        }
    }

    /// Children made with glibc's clone(), which runs no fork handlers, copy the parent's
    /// memory as it is, the descriptors' lock included, held now and then by the drain thread
    /// while it writes. A child's dup2 waited for a holder it does not have: 15 children in
    /// 300 hung (still running after 200 ms). Now a waiter that finds the holder gone takes the
    /// lock. (A child still running after 2 s counts as hung: a loaded machine delays some.)
    @Test func cloneChildTakesDescriptorOneThousand() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("clone_dup2"), "300"])
        #expect(outcome.status == 0)
        #expect(outcome.stdoutText == "clone_dup2: 300 children, 0 hung\n")
        let process = try #require(report.processes.first)
        #expect(process.complete)
        try process.expectRecord("leak_after_clones", bytes: 16, blocks: 1, file: "clone_dup2.c", line: 27,
                                 caller: ("main", "clone_dup2.c", 71))
    }

    /// A single-threaded program's child made with glibc's clone() (no CLONE_VM: no fork
    /// handlers run) copies the shim's rings but not its drain thread. Once its events filled
    /// a ring, it waited for ever for that thread (the program hung; the fixture now kills
    /// the child after 20 s and says so). Likewise a child that forked: the fork handler waited
    /// for that thread to pause. The child now stops recording, untraced, and runs on (its
    /// fork child too); the parent's report is whole.
    @Test(arguments: [[String](), ["fork"]])
    func cloneChildThatAllocatesALot(forks: [String]) throws {
        let (outcome, report) = try Harness.run([Harness.fixture("clone_allocates")] + forks)
        #expect(outcome.status == 0)
        #expect(outcome.stdoutText == (forks.isEmpty ? "" : "clone_allocates: grandchild done\n")
            + "clone_allocates: child done\nclone_allocates: child exited 0\n")
        try #require(report.processes.count == 1)
        let parent = report.processes[0]
        #expect(parent.complete)
        try parent.expectRecord("leak_in_parent", bytes: 33, blocks: 1, file: "clone_allocates.c", line: 28,
                                caller: ("main", "clone_allocates.c", 69))
    }

    /// Under a descriptor limit of 64 the trace sits at 63, where bash puts the script it
    /// reads (the highest free number, which it checks with fcntl); the script then puts a
    /// file at 62. Each time the trace moves to the next free number below: it used to look
    /// only at or above the top and, finding nothing, stopped (bash scripts under `ulimit -n
    /// 64` or 256 had incomplete traces). Output as natively, the trace complete.
    @Test func scriptUnderALowDescriptorLimit() throws {
        try Harness.withTemporaryDirectory { directory in
            let script = directory + "/script.sh"
            try "echo start\nexec 62>\"$1/x\"\necho into62 >&62\ncat \"$1/x\"\n".write(toFile: script, atomically: true, encoding: .utf8)
            let command = ["/usr/bin/prlimit", "--nofile=64", "--", "/bin/bash", script, directory]
            let native = try Harness.execute(command[0], Array(command.dropFirst()))
            #expect(native.stdoutText == "start\ninto62\n")
            let (traced, report) = try Harness.run(command)
            #expect(traced.status == 0)
            #expect(traced.stdoutText == native.stdoutText)
            #expect(report.processes.count == 2) // bash and cat
            for process in report.processes { #expect(process.complete, "\(process.command)") }
        }
    }

    /// `exec 1000>file` in bash: bash checks whether 1000 is open first, and one it finds open
    /// and close-on-exec it takes for its own, moves it back after the redirection, and the
    /// output went elsewhere (into libunwind's pipe). Same files as natively.
    @Test func shellRedirectionToDescriptorOneThousand() throws {
        try Harness.withTemporaryDirectory { directory in
            let script = "exec 1000>\"$1/a\" 1001>\"$1/b\" 1002>\"$1/c\"; echo one >&1000; echo two >&1001; echo three >&1002"
            let (outcome, report) = try Harness.run(["/bin/bash", "-c", script, "bash", directory])
            #expect(outcome.status == 0, "\(outcome.stderrLines)")
            for (name, line) in [("a", "one\n"), ("b", "two\n"), ("c", "three\n")] {
                let content = FileManager.default.contents(atPath: directory + "/" + name) ?? Data()
                #expect(content == Data(line.utf8), "\(name): \(String(decoding: content, as: UTF8.self))")
            }
            #expect(report.processes.count == 1)
            #expect(report.processes.allSatisfy { $0.complete })
        }
    }

    /// The program closes every descriptor above stderr with libc's calls (close_range,
    /// closefrom, or close in a loop), as daemons and subprocess helpers do. Its own are
    /// closed; the trace file stays open, so the trace is complete and the
    /// leak is found, as valgrind finds it. Before, the trace stopped there: "incomplete", 0
    /// allocations, no leak answers.
    @Test(arguments: ["close_range", "closefrom", "close_loop"])
    func programClosesDescriptorsWithLibc(how: String) throws {
        let (outcome, report) = try Harness.run([Harness.fixture("closes_descriptors"), how])
        #expect(outcome.status == 0, "\(outcome.stderrLines)")
        #expect(outcome.stdoutText == "closed: ok\n")
        let process = try #require(report.processes.first)
        #expect(process.complete)
        try process.expectRecord("leak_after_closing", bytes: 66, blocks: 1, file: "closes_descriptors.c", line: 26,
                                 caller: ("main", "closes_descriptors.c", 63))
        #expect(process.heap.allocs == 1_002) // and stdout's buffer
        #expect(process.heap.frees == 1_000)
    }

    /// The program exits with every descriptor its soft limit allows in use (open() failed with
    /// EMFILE), as a program that leaks descriptors does. The scan raises the soft limit for
    /// its own reads of /proc (memcheck keeps descriptors of its own above the program's
    /// limit), and classifies as valgrind does. Before, it could not open /proc/self/maps, had
    /// no roots, and every block came out definitely lost, the one a global holds too (a Python
    /// script that did the same: 276,664 bytes "definitely lost", 0 still reachable).
    @Test func programExitsWithEveryDescriptorInUse() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("exhausts_descriptors")])
        #expect(outcome.status == 0, "\(outcome.stderrLines)")
        #expect(outcome.stdoutText == "exhausted: ok\n")
        let process = try #require(report.processes.first)
        #expect(process.complete)
        let held = try #require(process.records(allocatedIn: "held_by_global").first)
        #expect([held.kind, "\(held.bytes)"] == ["reachable", "40"])
        let lost = try #require(process.records(allocatedIn: "leak_one").first)
        #expect([lost.kind, "\(lost.bytes)"] == ["definite", "24"])
        #expect(process.leaks?.definite == Report.Amount(bytes: 24, blocks: 1))
    }

    /// The same with the hard limit at the soft one and no privilege to raise it: nothing can
    /// open /proc/self/maps, so the blocks are reported in use, not classified (not all
    /// definitely lost), the report says why, and a leak gate fails: the check never ran.
    @Test func programExitsWithEveryDescriptorInUseUnderALockedLimit() throws {
        let (outcome, report) = try Harness.runReport([Harness.fixture("exhausts_descriptors"), "locked"],
                                                      flags: ["--error-exitcode=9"])
        #expect(outcome.status == 9, "\(outcome.stderrLines)")
        #expect(outcome.stdoutText == "exhausted: ok\n")
        let process = try #require(report?.processes.first)
        #expect(process.complete)
        #expect(process.leaks == nil)
        #expect(process.records.allSatisfy { $0.kind == "inUse" })
        #expect(process.records(allocatedIn: "held_by_global").first?.bytes == 40)
        #expect(process.records(allocatedIn: "leak_one").first?.bytes == 24)
        let pid = process.pid
        #expect(outcome.stderrLines.contains("==\(pid)== WARNING: leaks were not classified: the exit-time scan could not read /proc/self/maps (every descriptor was in use, under a limit it could not raise);"))
        #expect(outcome.stderrLines.contains("heapgate: process \(pid) could not be scanned for leaks at exit: its leaks were not checked, so --error-exitcode fails the run"))
    }

    /// A signal handler that allocates and frees (not async-signal-safe, and common), sent
    /// thousands of times while main does 2 M malloc/free pairs, so that it interrupts the
    /// shim's pushes anywhere. A solo-ring claim made of a load and a store hung the program
    /// in 1 run of 5 (the handler's push took the same position); one instruction does not.
    /// Every event of main is recorded, no free is unmatched, and each handler pair is
    /// recorded or, when it interrupted the recording of an allocation, neither half is
    /// (docs/architecture.md, the recursion guard). Three runs.
    @Test func signalHandlerAllocates() throws {
        for round in 1...3 {
            let (outcome, report) = try Harness.run([Harness.fixture("signal_allocs")])
            #expect(outcome.status == 0, "round \(round)")
            #expect(outcome.stdoutText == "signal_allocs: ok\n", "round \(round)")
            let line = try #require(outcome.stderrLines.first { $0.hasPrefix("signal_allocs: ") })
            let handlerRuns = try #require(UInt64(line.split(separator: " ")[1]))
            let process = try #require(report.processes.first)
            #expect(process.complete, "round \(round)")
            // main's 2,000,000 and the one that fills the handler's bin, the signalling thread's
            // DTV, stdout's buffer, and the handler's.
            #expect(process.heap.allocs >= 2_000_003 && process.heap.allocs <= 2_000_003 + handlerRuns,
                    "round \(round): \(process.heap.allocs) allocs, \(handlerRuns) handler runs")
            #expect(process.heap.frees == process.heap.allocs - 2, "round \(round)")
        }
    }

    /// The program's own descriptors are numbered as without heapgate: the trace file lives
    /// at 1000, and libunwind has no pipe (hg_unwind_readable.c).
    /// Also under a descriptor limit below 1000, where the trace file goes to the top of the
    /// range: it used to stay at 3.
    @Test(arguments: [[String](), ["/usr/bin/prlimit", "--nofile=64", "--"]])
    func descriptorNumbersAreUnchanged(limit: [String]) throws {
        let command = limit + [Harness.fixture("first_fd")]
        let native = try Harness.execute(command[0], Array(command.dropFirst()))
        #expect(native.stdoutText == "open 3 pipe 4 5\n")
        let (traced, _) = try Harness.run(command)
        #expect(traced.stdoutText == native.stdoutText)
    }

    /// The layout `make install` makes (PREFIX/bin/heapgate, PREFIX/lib/heapgate/libheapgate.so):
    /// the CLI finds the shim beside itself without configuration.
    @Test func installedLayoutFindsTheShim() throws {
        let prefix = Harness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: prefix) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: prefix + "/bin", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: prefix + "/lib/heapgate", withIntermediateDirectories: true)
        try fm.copyItem(atPath: Harness.heapgate, toPath: prefix + "/bin/heapgate")
        try fm.copyItem(atPath: Harness.shim, toPath: prefix + "/lib/heapgate/libheapgate.so")
        let outcome = try Harness.execute(prefix + "/bin/heapgate", ["run", "--", Harness.fixture("leak_basic")])
        #expect(outcome.status == 0)
        #expect(outcome.stderr.contains("in use at exit: 228 bytes in 4 blocks"))
    }

    @Test func errnoIsPreserved() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("errno_preserved")])
        #expect(outcome.status == 0, "\(outcome.stderrLines.filter { $0.hasPrefix("errno_preserved:") })")
        #expect(outcome.stdoutText == "errno_preserved: ok\n")
        // Each round (two in main, then two in the thread; a second round's stacks are ones
        // the thread had before, the tracer's fast path) makes 11 allocations (malloc, calloc,
        // 3 reallocs, reallocarray, posix_memalign, aligned_alloc, memalign, valloc, malloc(0))
        // and 11 frees (2 by the growing and shrinking reallocs, 9 by free; free(NULL) and the
        // two failing calls do not count). pthread_create adds the thread's DTV, which glibc
        // keeps with the cached thread stack: the one block still in use.
        let process = try #require(report.processes.first)
        #expect(process.heap.allocs == 45)
        #expect(process.heap.frees == 44)
        #expect(process.heap.inUseAtExit.blocks == 1)
        #expect(process.records(allocatedIn: "exercise").isEmpty)
    }

    /// When the shim cannot create its trace file, the program runs exactly as without it.
    /// Tests run as root, for whom a mode-0555 directory is writable, so the unwritable places
    /// are a path below a regular file and a path below /proc/self.
    @Test func unwritableTraceDirectoryWithPreload() throws {
        let input = Data("some input\n".utf8)
        let command = [Harness.fixture("prints_a_lot"), "5", "--stdin"]
        let native = try Harness.execute(command[0], Array(command.dropFirst()), input: input)
        #expect(native.status == 5)
        try Harness.withTemporaryDirectory { directory in
            let regularFile = directory + "/a-file"
            try Data("x".utf8).write(to: URL(fileURLWithPath: regularFile))
            for traceDirectory in [regularFile + "/traces", "/proc/self/heapgate-nonexistent"] {
                let traced = try Harness.execute(command[0], Array(command.dropFirst()),
                                                 environment: ["LD_PRELOAD": Harness.shim, "HEAPGATE_OUT": traceDirectory],
                                                 input: input)
                #expect(traced.status == 5, "HEAPGATE_OUT=\(traceDirectory)")
                expectSameBytes(traced.stdout, native.stdout, "stdout with HEAPGATE_OUT=\(traceDirectory)")
                expectSameBytes(Data(traced.stderr.utf8), Data(native.stderr.utf8), "stderr with HEAPGATE_OUT=\(traceDirectory)")
            }
        }
    }

    /// A file-size limit (`ulimit -f`) below what the trace needs: a write that starts at the
    /// limit raises SIGXFSZ, which kills the process, and the shim writes its first bytes and
    /// its last on the program's own threads. 0 bytes stops the very first write; 100 cuts it
    /// short, after which a retry would start at the limit. The shim stops at the limit instead.
    @Test(arguments: [0, 100])
    func fileSizeLimitNeverKillsTheProgram(limit: Int) throws {
        let input = Data("some input\n".utf8)
        let command = [Harness.fixture("prints_a_lot"), "5", "--stdin"]
        let native = try Harness.execute(command[0], Array(command.dropFirst()), input: input)
        #expect(native.status == 5)
        try Harness.withTemporaryDirectory { directory in
            let traced = try Harness.execute("/usr/bin/prlimit", ["--fsize=\(limit)", "--"] + command,
                                             environment: ["LD_PRELOAD": Harness.shim, "HEAPGATE_OUT": directory],
                                             input: input)
            #expect(traced.status == 5)
            expectSameBytes(traced.stdout, native.stdout, "stdout")
            expectSameBytes(Data(traced.stderr.utf8), Data(native.stderr.utf8), "stderr")
            // prlimit's own image wrote its trace before the limit; the fixture's stops at it.
            let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            let sizes = try names.map { try FileManager.default.attributesOfItem(atPath: directory + "/" + $0)[.size] as? Int ?? -1 }
            #expect(sizes.contains(limit), "trace sizes \(sizes)")
        }
        // heapgate run under the same limit says why the report is incomplete.
        let run = try Harness.execute("/usr/bin/prlimit", ["--fsize=\(limit)", "--", Harness.heapgate, "run", "--"] + command,
                                      input: input)
        #expect(run.status == 5)
        expectSameBytes(run.stdout, native.stdout, "stdout")
        #expect(run.stderr.contains("stops at the file-size limit (ulimit -f: \(limit) bytes), so it is incomplete"))
    }

    /// The program gets the signal mask and ignored signals it would get from a shell: what
    /// heapgate was given (nohup's ignored SIGHUP stays ignored), and glibc's own signals 32
    /// and 33 at their default, which glibc's posix_spawn would hand on as ignored (the test
    /// runner's children, heapgate here, start with them ignored for that reason).
    @Test(arguments: [([String](), "0000000000000000"), (["/usr/bin/nohup"], "0000000000000001")])
    func signalDispositionsPassThrough(wrapper: [String], ignored: String) throws {
        let command = wrapper + [Harness.heapgate, "run", "--", "/bin/grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"]
        let outcome = try Harness.execute(command[0], Array(command.dropFirst()))
        #expect(outcome.status == 0)
        #expect(outcome.stdoutText == "SigBlk:\t0000000000000000\nSigIgn:\t\(ignored)\n")
    }

    /// The shim leaves the program its address-space limit (`ulimit -v`): huge_block needs
    /// 8 GiB of address space at its peak, and runs under a limit 128 MiB above that. The
    /// shim's stack storage was one 4 GiB reservation, and huge_block failed traced (77).
    @Test func addressSpaceLimitIsLeftToTheProgram() throws {
        let limit = "--as=\((8 << 30) + (128 << 20))"
        let native = try Harness.execute("/usr/bin/prlimit", [limit, "--", Harness.fixture("huge_block")])
        try #require(native.status == 0, "huge_block needs 8 GiB of address space, without heapgate too")
        let (outcome, report) = try Harness.run(["/usr/bin/prlimit", limit, "--", Harness.fixture("huge_block")],
                                                flags: ["--show-leak-kinds=all"])
        #expect(outcome.status == 0)
        let process = try #require(report.processes.first)
        #expect(process.command == [Harness.fixture("huge_block")])
        #expect(process.heap.inUseAtExit == Report.Amount(bytes: 4_294_967_312, blocks: 1))
        #expect(process.heap.allocs == 3)
        #expect(process.heap.frees == 2)
        // And with its stacks: the block held in a global, from hold_huge.
        let held = process.records(allocatedIn: "hold_huge")
        #expect(held.count == 1)
        #expect(held.first?.frames.contains { $0.function == "hold_huge" && $0.file == "huge_block.c" } == true)
    }

    /// A thread made with the smallest stack glibc allows (PTHREAD_STACK_MIN, 16 KiB) allocates
    /// from 1 to 20 frames deep. glibc takes static TLS out of every thread's stack, and the
    /// unwinder's 6.4 KiB of per-thread memory was static TLS: this thread crashed (SIGSEGV)
    /// in its first malloc. Its stacks are whole: malloc, 20 frames of descend, worker.
    @Test func threadWithTheSmallestStack() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("small_stack")],
                                                flags: ["--show-leak-kinds=all", "--num-callers=30"])
        #expect(outcome.status == 0)
        #expect(outcome.stdoutText == "small_stack: ok\n")
        let process = try #require(report.processes.first)
        #expect(process.heap.allocs == 22)
        #expect(process.heap.frees == 19)
        let record = try #require(process.records(allocatedIn: "worker").first)
        #expect(record.bytes == 40 && record.blocks == 1)
        #expect(record.frames.first?.function == "malloc")
        let frames = record.frames.dropFirst().prefix(21).map { "\($0.function ?? "?"):\($0.line ?? 0)" }
        #expect(frames == ["descend:20"] + Array(repeating: "descend:21", count: 19) + ["worker:31"])
    }

    /// Arguments and environment values that are not UTF-8 (a Latin-1 file name) reach the
    /// program byte for byte. Swift decodes argv and the environment as UTF-8, replacing
    /// other bytes, and heapgate handed the program the replacements. A shell makes the bytes:
    /// the test's own process could not pass them.
    @Test func bytesThatAreNotUTF8PassThrough() throws {
        let script = #"b=$(printf 'a\377b'); X="$b" exec "$0" run -- /bin/sh -c 'printf %s "$1" | od -An -tx1; printf %s "$X" | od -An -tx1' inner "$b""#
        let outcome = try Harness.execute("/bin/sh", ["-c", script, Harness.heapgate])
        #expect(outcome.status == 0)
        #expect(outcome.stdoutText == " 61 ff 62\n 61 ff 62\n")
    }

    /// A signal sent to heapgate (by kill, `docker stop`, a CI runner, `kill $!` in a script)
    /// goes on to the program, which valgrind's user would have sent it to. heapgate died of
    /// it and left the program running. Here the program traps SIGTERM, says so once, and
    /// exits 7, which heapgate then exits with, after the report.
    @Test func signalSentToHeapgateReachesTheProgram() throws {
        // At most 5 s, so that a program left running does not outlive the test by much.
        let script = "trap 'echo got TERM; exit 7' TERM; echo ready; for i in $(seq 100); do sleep 0.05; done"
        let running = try BackgroundProcess(Harness.heapgate, ["run", "--", "/bin/sh", "-c", script])
        try running.waitForLine("ready")
        #expect(running.terminate(with: SIGTERM) == 7)
        #expect(running.wholeOutput() == "ready\ngot TERM\n")
    }

    /// A program that dies of a signal makes heapgate die of it too, after the report, as
    /// valgrind's process does: its parent sees a signal death (Python's -6 after os.abort, a
    /// shell's loop that stops on SIGINT), where heapgate used to exit with 128+N.
    @Test(arguments: [SIGTERM, SIGINT, SIGABRT])
    func signalDeathIsPassedOn(_ signal: Int32) throws {
        let process = Process()
        // Through stdio_only, with no signal blocked, as every test's process (Harness.execute).
        process.executableURL = URL(fileURLWithPath: Harness.fixture("stdio_only"))
        process.arguments = [Harness.heapgate, "run", "--", "/bin/sh", "-c", "kill -\(signal) $$"]
        process.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        process.standardError = err
        try Harness.startUnblocked(process)
        let report = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal, "exited \(process.terminationStatus): \(report)")
        #expect(process.terminationStatus == signal)
        #expect(report.contains("HEAP SUMMARY:"), "\(report)")
    }

    /// The report written to a pipe whose reader has gone (`heapgate run -- prog 2>&1 | head
    /// -1`): heapgate dies of SIGPIPE, as valgrind does, but only once its temporary trace
    /// directory is removed. It died in the middle of the report and left the directory, with
    /// every trace in it, in $TMPDIR. (env resets SIGPIPE, which the test runner may ignore, to
    /// its default, as a shell's pipeline has it.)
    @Test func reportToAClosedPipeLeavesNoTraceDirectory() throws {
        try Harness.withTemporaryDirectory { temporary in
            var ends: [Int32] = [0, 0]
            try #require(pipe(&ends) == 0)
            close(ends[0])
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Harness.fixture("stdio_only"))
            process.arguments = ["/usr/bin/env", "--default-signal=PIPE", "TMPDIR=\(temporary)", Harness.heapgate, "run", "--",
                                 Harness.fixture("leak_basic")]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle(fileDescriptor: ends[1], closeOnDealloc: true)
            try Harness.startUnblocked(process)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal)
            #expect(process.terminationStatus == SIGPIPE)
            #expect(try FileManager.default.contentsOfDirectory(atPath: temporary) == [])
        }
    }

    /// A missing or malformed suppression file, or a JSON report that cannot be written, stops
    /// `heapgate run` before the program runs, with one line and status 2, as valgrind stops.
    /// Found after the run, they were reported beside the program's own status (0), which a CI
    /// job reads as a pass.
    @Test(arguments: [
        (["--suppressions=/nonexistent/heapgate.supp"], "heapgate: /nonexistent/heapgate.supp: no such suppressions file"),
        (["--json=/proc/heapgate.json"], "heapgate: cannot write the JSON report to /proc/heapgate.json: No such file or directory"),
        (["--suppressions=/"], "heapgate: /: is a directory, not a suppressions file"),
    ])
    func badReportInputsStopBeforeTheProgramRuns(flags: [String], message: String) throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run"] + flags + ["--", "/bin/echo", "ran"])
        #expect(outcome.status == 2)
        #expect(outcome.stdoutText == "", "the program must not run")
        #expect(outcome.stderr == message + "\n")
    }

    /// `--suppressions=/dev/null`, the usual "no suppressions", is an empty file: it stopped
    /// the run with "cannot read suppressions file". The program runs as without it.
    @Test func suppressionsFromDevNull() throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--suppressions=/dev/null", "--", "/bin/echo", "ran"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdoutText == "ran\n")
        #expect(outcome.stderr.contains("HEAP SUMMARY:"), "\(outcome.stderr)")
    }

    /// Entering a new user namespace (what `unshare -U`, rootless containers and sandboxes
    /// do) needs a single-threaded process, and the shim's drain thread made every such call
    /// fail with EINVAL. The shim stops the drain thread around unshare and setns, and the
    /// trace goes on: the blocks allocated before and after are both reported. The same
    /// through glibc's syscall(SYS_unshare, ...), which failed with EINVAL until 2026-11-24.
    /// Skipped where the machine allows no user namespaces at all (the fixture fails natively
    /// there).
    @Test(.enabled(if: Self.userNamespacesWork, "this machine allows no user namespaces"),
          arguments: [[String](), ["syscall"]])
    func unshareUserNamespace(how: [String]) throws {
        let (outcome, report) = try Harness.run([Harness.fixture("unshare_user")] + how)
        #expect(outcome.status == 0)
        #expect(outcome.stdoutText == "unshare_user: ok\n")
        let process = try #require(report.processes.first)
        #expect(process.complete)
        #expect(HeapFigures(process) == HeapFigures(bytes: 48, blocks: 2, allocs: 2, frees: 0, bytesAllocated: 48))
        try process.expectRecord("before_unshare", bytes: 16, blocks: 1, file: "unshare_user.c", line: 29,
                                 caller: ("main", "unshare_user.c", 43))
        try process.expectRecord("after_unshare", bytes: 32, blocks: 1, file: "unshare_user.c", line: 36,
                                 caller: ("main", "unshare_user.c", 53))
    }

    /// Run as root, a program that becomes another user before it execs (`setpriv`, `runuser`,
    /// a container's entry point) left that user's programs untraced without a word: the
    /// trace directory was root's alone, and they could not create their traces. heapgate's
    /// own directory is now open for creating files (1733). The program run as `nobody` is
    /// reported, with the figures it has natively.
    @Test(.enabled(if: geteuid() == 0, "needs root to become another user"))
    func programThatBecomesAnotherUser() throws {
        let (outcome, report) = try Harness.run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                                 Harness.fixture("leak_basic")])
        #expect(outcome.status == 0, "\(outcome.stderrLines.filter { $0.hasPrefix("heapgate") })")
        try #require(report.processes.count == 1)
        let process = report.processes[0]
        #expect(process.command == [Harness.fixture("leak_basic")])
        #expect(process.complete)
        #expect(HeapFigures(process) == TraceInputTests.leakBasic)
    }

    /// A program that runs another with LD_PRELOAD cleared (`env -i`): the second is not
    /// traced, and the first's trace ends at its exec. The report said only "killed, crashed,
    /// is still running"; heapgate, which saw the process exit by itself, says what else ends
    /// a trace early, and that the program run is not reported.
    @Test func programRunWithThePreloadCleared() throws {
        let (outcome, report) = try Harness.run(["/usr/bin/env", "-i", Harness.fixture("leak_basic")])
        #expect(outcome.status == 0)
        try #require(report.processes.count == 1)
        let process = report.processes[0]
        #expect(!process.complete)
        #expect(outcome.stderrLines.contains("heapgate: warning: process \(process.pid) exited with status 0, but the trace of"
            + " /usr/bin/env ends before that: it ran a program heapgate cannot trace (one run with LD_PRELOAD cleared, as by"
            + " env -i; a setuid or statically linked one), which is not reported, closed its trace file with a raw system"
            + " call, or the trace could not be written (a full disk)"), "\(outcome.stderrLines.filter { $0.hasPrefix("heapgate") })")
        #expect(outcome.stderr.contains("WARNING: this trace is incomplete (the process was killed, crashed, is still running, ran a program heapgate"))
    }

    /// glibc makes every thread take a set*id or setgroups call and aborts the process when
    /// their results differ. A program that dropped its own thread's capabilities (capset is
    /// per thread, as `setpriv --clear-groups` does) and then called setgroups got EPERM
    /// natively, and died of SIGABRT under heapgate, whose drain thread, as root, still had
    /// CAP_SETGID. The shim stops the drain thread around those calls.
    @Test func setgroupsAfterThreadDroppedItsCapabilities() throws {
        let native = try Harness.execute(Harness.fixture("thread_credentials"), [])
        #expect(native.status == 0 && native.stdoutText == "thread_credentials: setgroups -1 EPERM\n", "\(native.stderr)")
        let (outcome, report) = try Harness.run([Harness.fixture("thread_credentials")])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdoutText == native.stdoutText)
        let process = try #require(report.processes.first)
        #expect(process.complete)
        #expect(HeapFigures(process) == HeapFigures(bytes: 48, blocks: 2, allocs: 2, frees: 0, bytesAllocated: 48))
        try process.expectRecord("before_drop", bytes: 16, blocks: 1, file: "thread_credentials.c", line: 31,
                                 caller: ("main", "thread_credentials.c", 45))
        try process.expectRecord("after_drop", bytes: 32, blocks: 1, file: "thread_credentials.c", line: 38,
                                 caller: ("main", "thread_credentials.c", 57))
    }

    /// A program that sandboxes itself with a seccomp allow-list would have the shim's own
    /// system calls refused by its filter: it died of SIGSYS under heapgate (and dies under
    /// valgrind). Tracing stops just before the filter goes in, whichever way it is installed,
    /// and the program runs on as it does natively. The report holds what happened before
    /// (exact figures; the 100 bytes allocated under the filter are not seen), says why it
    /// stops there, classifies nothing, and a leak gate fails closed. The same for a filter
    /// whose decision reads a call's arguments (`args`: a write to a descriptor above 2
    /// kills), which the shim cannot judge for its own arguments: a build that trusted it
    /// kept tracing and died of SIGSYS at its first trace write. Skipped where the machine
    /// lets no program install a filter (the fixture fails natively there).
    @Test(.enabled(if: Self.seccompFiltersWork, "this machine lets no program install a seccomp filter"),
          arguments: [("prctl", "allow"), ("syscall", "allow"), ("prctl", "args")])
    func seccompAllowList(installedBy: String, kind: String) throws {
        let command = [Harness.fixture("sandboxed"), installedBy, kind]
        let native = try Harness.execute(command[0], Array(command.dropFirst()))
        #expect(native.status == 7)
        #expect(native.stdoutText == "sandboxed: running under the filter\n")
        let (traced, written) = try Harness.runReport(command)
        #expect(traced.status == 7, "stderr: \(traced.stderr)")
        #expect(traced.stdoutText == native.stdoutText)
        let report = try #require(written, "no JSON report; stderr: \(traced.stderr)")
        let process = try #require(report.processes.first)
        #expect(report.processes.count == 1)
        #expect(process.stoppedForSandbox)
        #expect(!process.complete)
        #expect(process.leaks == nil)
        #expect(HeapFigures(process) == HeapFigures(bytes: 40, blocks: 1, allocs: 2, frees: 1, bytesAllocated: 64))
        try process.expectRecord("before_filter", bytes: 40, blocks: 1, file: "sandboxed.c", line: 37,
                                 caller: ("main", "sandboxed.c", 125))
        #expect(traced.stderr.contains("WARNING: tracing stopped when the process installed a seccomp filter"))

        let gated = try Harness.execute(Harness.heapgate, ["run", "--error-exitcode=9", "--"] + command)
        #expect(gated.status == 9)
        #expect(gated.stdoutText == native.stdoutText)
        #expect(gated.stderr.contains("installed a seccomp filter, which stopped tracing: its leaks were not checked"))
    }

    /// The process heapgate started left no trace at all, so nothing of it was checked: with
    /// `--error-exitcode=N` the gate fails with N, as for a process that stopped tracing for a
    /// sandbox, where it passed. Here tracing is turned off (`HEAPGATE_DISABLE`); below, a
    /// script's interpreter is static. Without the gate the status stays the program's; its
    /// output is its own either way.
    @Test func startedProcessThatLeftNoTraceFailsTheGate() throws {
        try expectUntracedRun(["/bin/sh", "-c", "echo out; exit 3"], environment: ["HEAPGATE_DISABLE": "1"],
                              output: "out\n", status: 3)
    }

    /// A script whose interpreter is static: the loader never runs, so the shim never does,
    /// and heapgate, which refuses a static program (status 3), cannot tell from the script.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Harness.fixture("static_hello")),
                   "static_hello was not built: linking with `cc -static` needs libc.a (scripts/build-fixtures.sh says so)"))
    func scriptWithAStaticInterpreterFailsTheGate() throws {
        try Harness.withTemporaryDirectory { directory in
            let script = directory + "/static_interpreter"
            try "#!\(Harness.fixture("static_hello"))\n".write(toFile: script, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
            try expectUntracedRun([script], environment: [:], output: "static_hello\n", status: 0)
        }
    }

    /// Runs `command`, which leaves no trace, with `--error-exitcode=9` (status 9, and why)
    /// and without (its own status).
    private func expectUntracedRun(_ command: [String], environment: [String: String], output: String, status: Int32,
                                   sourceLocation: SourceLocation = #_sourceLocation) throws {
        let untraced = "heapgate: \(command[0]) wrote no trace (it ignores LD_PRELOAD, or cleared it)"
        let gated = try Harness.execute(Harness.heapgate, ["run", "--error-exitcode=9", "--"] + command, environment: environment)
        #expect(gated.status == 9, sourceLocation: sourceLocation)
        #expect(gated.stdoutText == output, sourceLocation: sourceLocation)
        #expect(gated.stderrLines.count == 2, "\(gated.stderr)", sourceLocation: sourceLocation)
        #expect(gated.stderrLines.first == untraced, sourceLocation: sourceLocation)
        #expect(gated.stderrLines.last?.wholeMatch(
            of: #/heapgate: process \d+ left no trace: its leaks were not checked, so --error-exitcode fails the run/#) != nil,
            "\(gated.stderr)", sourceLocation: sourceLocation)
        let ungated = try Harness.execute(Harness.heapgate, ["run", "--"] + command, environment: environment)
        #expect(ungated.status == status, sourceLocation: sourceLocation)
        #expect(ungated.stdoutText == output, sourceLocation: sourceLocation)
        #expect(ungated.stderr == untraced + "\n", sourceLocation: sourceLocation)
    }

    /// The started process exited by itself, but its trace ends before that (here it ran a
    /// program with LD_PRELOAD cleared; a full disk or the file-size limit cut it the same
    /// way): its leaks were never classified, and `--error-exitcode` passed the run. It fails
    /// it now, as for a process that left no trace. Under the file-size limit, leak_basic's
    /// 228 bytes definitely lost passed the gate.
    @Test(arguments: [[String](), ["/usr/bin/prlimit", "--fsize=100", "--"]])
    func startedProcessWhoseTraceEndsEarlyFailsTheGate(limit: [String]) throws {
        let command = limit.isEmpty ? ["/usr/bin/env", "-i", Harness.fixture("leak_basic")] : [Harness.fixture("leak_basic")]
        let gated = try Harness.execute((limit + [Harness.heapgate])[0],
                                        Array((limit + [Harness.heapgate]).dropFirst()) + ["run", "--error-exitcode=9", "--"] + command)
        #expect(gated.status == 9, "\(gated.stderr)")
        #expect(gated.stdoutText == "leak_basic: done\n")
        let unchecked = gated.stderrLines.filter { $0.hasPrefix("heapgate: process") }
        #expect(unchecked.count == 1 && unchecked[0].wholeMatch(
            of: #/heapgate: process \d+ has a trace that ends before its exit: its leaks were not checked, so --error-exitcode fails the run/#) != nil,
            "\(gated.stderr)")
        let ungated = try Harness.execute((limit + [Harness.heapgate])[0],
                                          Array((limit + [Harness.heapgate]).dropFirst()) + ["run", "--"] + command)
        #expect(ungated.status == 0)
        #expect(!ungated.stderr.contains("its leaks were not checked"))
    }

    /// A --trace-dir that exists but takes no files (a read-only mount, another user's): the
    /// program ran untraced, and heapgate said it "wrote no trace (it ignores LD_PRELOAD, or
    /// cleared it)". Now one line and status 2 before the program runs, as for a directory
    /// that cannot be created. Needs a user the directory's mode applies to.
    @Test(.enabled(if: geteuid() == 0, "needs root to become another user"))
    func traceDirectoryThatTakesNoFiles() throws {
        try Harness.withTemporaryDirectory { directory in
            let closed = directory + "/closed"
            try FileManager.default.createDirectory(atPath: closed, withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o555])
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory)
            let outcome = try Harness.execute("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                                   Harness.heapgate, "run", "--trace-dir=\(closed)", "--",
                                                                   "/bin/echo", "ran"])
            #expect(outcome.status == 2)
            #expect(outcome.stdoutText == "", "the program must not run")
            #expect(outcome.stderr == "heapgate: cannot write to the trace directory \(closed): Permission denied\n")
        }
    }

    /// A directory that takes no files although access(2) says root may write there (/proc,
    /// /sys): the program ran untraced, and heapgate said it "wrote no trace (it ignores
    /// LD_PRELOAD, or cleared it)", status 0. Found checking the README against the build. It
    /// is refused before the program runs, as any --trace-dir that takes no files is (and as
    /// valgrind refuses a --log-file it cannot create); under LD_PRELOAD alone such a
    /// HEAPGATE_OUT leaves the program unharmed (unwritableTraceDirectoryWithPreload).
    @Test(.enabled(if: geteuid() == 0, "root passes access(2) on /proc"))
    func traceDirectoryWhereNoFileCanBeMade() throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--trace-dir=/proc", "--", "/bin/echo", "ran"])
        #expect(outcome.status == 2)
        #expect(outcome.stdoutText == "", "the program must not run")
        #expect(outcome.stderr == "heapgate: cannot create a file in the trace directory /proc: No such file or directory\n")
    }

    /// An empty TMPDIR is no directory, and means /tmp, as to mktemp(1), valgrind and Python:
    /// heapgate made its directory in / instead, which only root may, and refused to run
    /// anything for any other user ("cannot create a temporary directory in ", status 1). Run
    /// as another user than root.
    @Test func emptyTMPDIRMeansTmp() throws {
        let user = geteuid() == 0 ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : []
        let command = user + [Harness.heapgate, "run", "--", "/bin/echo", "ran"]
        let outcome = try Harness.execute(command[0], Array(command.dropFirst()), environment: ["TMPDIR": ""])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdoutText == "ran\n")
        #expect(outcome.stderr.contains("HEAP SUMMARY:"))
    }

    /// A program whose path is not UTF-8 (a Latin-1 directory name): Swift's strings replace
    /// such bytes, and `heapgate run` said "command not found" for a program valgrind runs. It
    /// is resolved and started as the bytes heapgate received, given as a path and through a
    /// PATH entry.
    @Test(arguments: ["\"$d/prog\"", "prog"])
    func programPathThatIsNotUTF8(program: String) throws {
        try Harness.withTemporaryDirectory { temporary in
            let script = "d=$(printf '%s/bad\\377dir' \"$0\"); mkdir \"$d\" && cp \"$1\" \"$d/prog\" && PATH=\"$d:$PATH\" exec \"$2\" run -- \(program)"
            let outcome = try Harness.execute("/bin/sh", ["-c", script, temporary, Harness.fixture("leak_basic"), Harness.heapgate])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(outcome.stderr.contains("definitely lost: 228 bytes in 4 blocks"), "\(outcome.stderr)")
        }
    }

    /// Under `ulimit -n 5` the report is right, but the temporary trace directory stayed: it
    /// was removed at the end, when the symbolizer's open files left no descriptor to list it
    /// with. It goes once the traces are read now.
    @Test func lowDescriptorLimitLeavesNoTraceDirectory() throws {
        try Harness.withTemporaryDirectory { temporary in
            let outcome = try Harness.execute("/bin/sh", ["-c", "ulimit -n 5; exec \"$0\" run -- \"$1\"",
                                                          Harness.heapgate, Harness.fixture("leak_basic")],
                                              environment: ["TMPDIR": temporary])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(outcome.stderr.contains("definitely lost: 228 bytes in 4 blocks"), "\(outcome.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: temporary) == [])
        }
    }

    /// $HEAPGATE_SHIM naming a file that is not there: the loader skipped the preload with a
    /// warning, the program ran untraced, and a leak gate passed. Now one line and status 1,
    /// as when no shim is found, and the program does not run.
    @Test(arguments: ["/nonexistent/libheapgate.so", "/tmp"])
    func shimThatCannotBeRead(shim: String) throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--error-exitcode=9", "--", Harness.fixture("leak_basic")],
                                          environment: ["HEAPGATE_SHIM": shim])
        #expect(outcome.status == 1)
        #expect(outcome.stdoutText == "", "the program must not run")
        let why = shim == "/tmp" ? "not a file" : "No such file or directory"
        #expect(outcome.stderr == "heapgate: cannot read libheapgate.so at \(shim) (HEAPGATE_SHIM): \(why)\n")
    }

    /// A deny-list (here: ptrace and mount refused, everything else allowed) lets every system
    /// call of the shim's through, which the shim checks by running the filter on each of
    /// them: tracing goes on under it, and the report is whole, as memcheck's (the same
    /// figures: ValgrindComparisonTests). The 40-byte block lost before the filter and the
    /// 100-byte one allocated under it are both there, classified. So for a filter the kernel
    /// cannot read (`fault`): the call fails with EFAULT (the fixture checks errno), nothing
    /// is installed, and nothing changes either.
    @Test(.enabled(if: Self.seccompFiltersWork, "this machine lets no program install a seccomp filter"),
          arguments: [("prctl", "deny"), ("syscall", "deny"), ("prctl", "fault"), ("syscall", "fault")])
    func seccompFilterThatLetsTheShimThrough(installedBy: String, kind: String) throws {
        let command = [Harness.fixture("sandboxed"), installedBy, kind]
        let (traced, written) = try Harness.runReport(command, flags: ["--error-exitcode=9"])
        #expect(traced.status == 9, "the 40 bytes are definitely lost; stderr: \(traced.stderr)")
        #expect(traced.stdoutText == "sandboxed: running under the filter\n")
        let report = try #require(written, "no JSON report; stderr: \(traced.stderr)")
        let process = try #require(report.processes.first)
        #expect(!process.stoppedForSandbox)
        #expect(process.complete)
        #expect(HeapFigures(process) == HeapFigures(bytes: 140, blocks: 2, allocs: 3, frees: 1, bytesAllocated: 164))
        let leaks = try #require(process.leaks)
        #expect(leaks.definite == Report.Amount(bytes: 40, blocks: 1))
        #expect(leaks.reachable == Report.Amount(bytes: 100, blocks: 1))
        try process.expectRecord("before_filter", bytes: 40, blocks: 1, file: "sandboxed.c", line: 37,
                                 caller: ("main", "sandboxed.c", 125))
        try process.expectRecord("after_filter", bytes: 100, blocks: 1, file: "sandboxed.c", line: 44,
                                 caller: ("main", "sandboxed.c", 135))
        #expect(!traced.stderr.contains("WARNING"))
    }

    /// With tracing off (`HEAPGATE_DISABLE=1`) the preloaded shim only forwards, and a program
    /// that sandboxes itself must meet no system call of the shim's at exit either: the exit
    /// hooks asked getpid first, and the program died of SIGSYS.
    @Test(.enabled(if: Self.seccompFiltersWork, "this machine lets no program install a seccomp filter"))
    func seccompAllowListWithTracingOff() throws {
        let traced = try Harness.execute(Harness.fixture("sandboxed"), ["prctl", "allow"],
                                         environment: ["LD_PRELOAD": Harness.shim, "HEAPGATE_DISABLE": "1"])
        #expect(traced.status == 7, "stderr: \(traced.stderr)")
        #expect(traced.stdoutText == "sandboxed: running under the filter\n")
    }

    static var seccompFiltersWork: Bool {
        (try? Harness.execute(Harness.fixture("sandboxed"), []))?.status == 7
    }

    static var userNamespacesWork: Bool {
        (try? Harness.execute(Harness.fixture("unshare_user"), []))?.stdoutText == "unshare_user: ok\n"
    }

    // MARK: Helpers

    /// heapgate's stderr is the program's stderr, then only report lines (`==PID== …`) and
    /// heapgate's own `heapgate: …` lines.
    private func expectProgramStderrThenReport(_ traced: Harness.Outcome, native: Harness.Outcome,
                                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(traced.stderr.hasPrefix(native.stderr), "the program's stderr comes first, unchanged",
                sourceLocation: sourceLocation)
        guard traced.stderr.hasPrefix(native.stderr) else { return }
        let rest = traced.stderr.dropFirst(native.stderr.count)
        let lines = rest.split(separator: "\n")
        #expect(!lines.isEmpty, "no report after the program's stderr", sourceLocation: sourceLocation)
        for line in lines {
            #expect(line.wholeMatch(of: #/==\d+==.*/#) != nil || line.hasPrefix("heapgate: "),
                    "unexpected line after the program's stderr: \(line)", sourceLocation: sourceLocation)
        }
    }

    /// `#expect(a == b)` on a megabyte of output would have Swift Testing diff the two when
    /// they differ, which takes minutes: compare first, and say only where they part.
    private func expectSameBytes(_ traced: Data, _ native: Data, _ what: String,
                                 sourceLocation: SourceLocation = #_sourceLocation) {
        guard traced != native else { return }
        let firstDifference = zip(traced, native).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            ?? min(traced.count, native.count)
        Issue.record("\(what) differs from the native run's from byte \(firstDifference) (\(traced.count) bytes, natively \(native.count))",
                     sourceLocation: sourceLocation)
    }

    private func lastLine(_ text: String) -> String {
        text.split(separator: "\n").last.map(String.init) ?? ""
    }

    private func hex16(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
