import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import HeapGate

/// The program died of a signal, its report printed: heapgate dies of the same signal, as
/// valgrind's process does, so that a parent sees a signal death, not an exit with 128+N (a
/// shell loop stops on ^C only when its command died of SIGINT). Thrown out of the traced run
/// so that its cleanup (the temporary trace directory) has run first.
private struct ProgramDiedOfSignal: Error {
    var signal: Int32

    /// Raises the signal with its default action, without a core file of heapgate's own (the
    /// program's was its own to make); exits with 128+N where that action is to ignore it.
    func dieOfIt() -> Never {
        var noCore = rlimit()
        if getrlimit(Int32(RLIMIT_CORE.rawValue), &noCore) == 0 {
            noCore.rlim_cur = 0
            setrlimit(Int32(RLIMIT_CORE.rawValue), &noCore)
        }
        Glibc.signal(signal, SIG_DFL)
        var only = sigset_t()
        sigemptyset(&only)
        sigaddset(&only, signal)
        pthread_sigmask(SIG_UNBLOCK, &only, nil)
        raise(signal)
        exit(128 + signal)
    }
}

/// A report written to a pipe whose reader is gone (`heapgate run -- prog 2>&1 | head -1`)
/// raised SIGPIPE halfway, and heapgate died of it before it removed its temporary trace
/// directory: a long run's traces, hundreds of megabytes, were left in /tmp. The signal is held
/// from the program's start (the program has heapgate's mask from before) and delivered once
/// heapgate has cleaned up: it then dies of it, as valgrind does.
private enum BrokenPipe {
    /// Whether hold() blocked it (it was not blocked already).
    nonisolated(unsafe) private static var held = false

    private static var pipe: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGPIPE)
        return set
    }

    static func hold() {
        var set = pipe, previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &set, &previous)
        held = sigismember(&previous, SIGPIPE) == 0
    }

    static func deliver() {
        guard held else { return }
        held = false
        var set = pipe
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}

/// `heapgate run`'s work once its arguments are known: start the program with the shim
/// preloaded, wait for it, report on the traces it left, exit with its status. Plain values in,
/// so that `HeapGateMain` can start `heapgate run -- PROGRAM` without ArgumentParser.
struct TracedRun {
    /// The program and its arguments.
    var command: [String]
    var traceDirectory: String?
    var report: ReportSettings

    /// Never returns normally: throws `ExitCode` with the program's status, or an error, or
    /// dies of the signal the program died of.
    func run() throws {
        // After traceAndReport's own cleanup, whichever way it ends.
        defer { BrokenPipe.deliver() }
        do {
            try traceAndReport()
        } catch let death as ProgramDiedOfSignal {
            death.dieOfIt()
        }
    }

    private func traceAndReport() throws {
        let shim: String
        do { shim = try TracedLaunch.locateShim() } catch let error as LaunchError {
            throw fail(error.description, status: error.exitStatus)
        }
        try checkReportInputs()
        let directory = try makeTraceDirectory()
        defer { if traceDirectory == nil { try? FileManager.default.removeItem(atPath: directory) } }
        // A --trace-dir used before keeps the earlier runs' traces: they are not this run's
        // processes (reported again, they also counted for --error-exitcode). The shim never
        // reuses a name (O_EXCL, then .2, .3, ...), so this run's traces are the new files.
        let earlierTraces = Set(traceDirectory == nil ? [] : TraceSet.files(in: directory))

        let launched: (pid: Int32, status: Int32, signal: Int32)
        // Made once the program runs: a symbolizer drops DEBUGINFOD_URLS from this process's
        // environment, which the program must still inherit.
        var symbolizer: Symbolizer?
        var preload: DebugInfoPreload?
        var launchedExecutable: String?
        // Whatever happens next, no preloading thread may be left inside libdw at exit.
        defer { preload?.finish() }
        do {
            var settings: [String: String] = [:]
            if report.leakCheck == "no" { settings["HEAPGATE_LEAK_CHECK"] = "no" }
            // The shim captures 64 frames unless told otherwise; deeper reports need deeper stacks.
            // It takes at most 256 (HG_MAX_DEPTH) and ignores a larger value, keeping 64, so
            // --num-callers up to valgrind's 500 asks for 256.
            if report.numCallers > 64 { settings["HEAPGATE_DEPTH"] = String(min(report.numCallers, 256)) }
            launched = try TracedLaunch.run(command, rawArguments: rawCommand(), shim: shim,
                                            traceDirectory: directory, extraEnvironment: settings) { executable, pid in
                BrokenPipe.hold()
                launchedExecutable = executable
                let shared = Symbolizer(useDebuginfod: report.debuginfod)
                symbolizer = shared
                preload = DebugInfoPreload(symbolizer: shared, executable: executable, pid: pid)
                // Parsed while the program runs rather than before it starts or after it exits
                // (2 M instructions, a tenth of what heapgate itself does around a short run).
                if report.defaultSuppressions == "yes" { _ = DefaultSuppressions.set }
            }
            preload?.finish()
        } catch let error as LaunchError {
            throw fail(error.description, status: error.exitStatus)
        }
        do {
            var warnings: [String] = []
            let files = TraceSet.files(in: directory).filter { !earlierTraces.contains($0) }
            if let limit = FileSizeLimit.bytes {
                for file in FileSizeLimit.filesAtLimit(files, limit: limit) {
                    warnings.append("\(file) stops at the file-size limit (ulimit -f: \(limit) bytes), so it is incomplete")
                }
            }
            let heaps = try TraceSet.load(files: files, rootPID: Int(launched.pid),
                                          skippingUnreadable: true, warnings: &warnings)
            // Read: the temporary traces can go now, before the report opens the program's
            // files. Removed at the end, under a low descriptor limit (`ulimit -n 5`) the
            // symbolizer's open files left none to list the directory with, and it stayed.
            if traceDirectory == nil { try? FileManager.default.removeItem(atPath: directory) }
            if let executable = launchedExecutable, let found = PrefixedAllocator.find(inExecutable: executable) {
                warnings.append("\(executable) also links \(found.allocator) (\(found.symbol)): the blocks it hands out are not"
                    + " malloc's, so heapgate does not trace them (nor does valgrind)")
            }
            // A process of the tree that outlived the one heapgate started (a daemon): its report
            // can only be of what it did so far, where valgrind's would come later, from it.
            for heap in heaps where !heap.isComplete && heap.header.pid != Int(launched.pid) && Self.isRunning(heap.header.pid) {
                warnings.append("process \(heap.header.pid) is still running, so its report covers only what it did until now"
                    + " (it outlived the process heapgate started); to report it when it ends, keep its trace with"
                    + " --trace-dir=DIR and run `heapgate summary DIR` once it has exited")
            }
            let rootHeap = heaps.last(where: { $0.header.pid == Int(launched.pid) })
            // The started process exited by itself, yet its trace ends before that: a full disk,
            // the file-size limit, an exec of a program the shim cannot get into. Its leaks were
            // never classified, and the leak gate passed as if they had been.
            let rootCut = launched.signal == 0 && rootHeap.map { !$0.isComplete && !$0.header.stoppedForSandbox } == true
            if rootCut, let last = rootHeap, !warnings.contains(where: { $0.hasPrefix(last.path) }) {
                warnings.append(Self.untracedExec(pid: launched.pid, status: launched.status, command: last.command))
            }
            for warning in warnings { StandardError.write("heapgate: warning: \(warning)\n") }
            // The started process left no trace file at all: the shim never ran in it (a script
            // whose interpreter is static, HEAPGATE_DISABLE, a preload the loader skipped), and
            // whatever else was traced, its leaks were never checked.
            let rootUntraced = !files.contains { TraceSet.pid(ofTraceNamed: $0) == Int(launched.pid) }
            if heaps.isEmpty || rootUntraced {
                // With files, the warnings above said why none could be read.
                let why = rootUntraced ? "wrote no trace (it ignores LD_PRELOAD, or cleared it)" : "left no readable trace"
                StandardError.write("heapgate: \(CommandLineText.controlsReplaced(command[0])) \(why)\n")
            }
            let reports = try report.emit(heaps, exitStatuses: [Int(launched.pid): Int(launched.status)],
                                          symbolizer: symbolizer)
            let rootUnchecked = rootUntraced ? "left no trace"
                : rootHeap == nil ? "left no readable trace"
                : rootCut ? "has a trace that ends before its exit" : nil
            if let gate = report.gate,
               report.gateFails(reports, unchecked: rootUnchecked.map { [(launched.pid, $0)] } ?? []) {
                throw ExitCode(gate)
            }
        } catch let error as TraceFormatError {
            StandardError.write("heapgate: \(error.description)\n")
        } catch let error as CLIError {
            // The report could not be made: never let that look like a clean run.
            throw fail(error.message, status: launched.status != 0 ? launched.status : error.status)
        }
        if launched.signal != 0 { throw ProgramDiedOfSignal(signal: launched.signal) }
        throw ExitCode(launched.status)
    }

    /// Suppression files and the JSON report's path are checked before the program runs, as
    /// valgrind checks them: found afterwards, a typo could only be reported beside the
    /// program's own exit status, which a CI job would read as a pass.
    private func checkReportInputs() throws {
        do { _ = try report.loadSuppressionFiles() } catch let error as CLIError {
            throw fail(error.message, status: error.status)
        }
        // With %p the names are known only afterwards: check that their directory takes files.
        for (name, what) in try report.outputFiles {
            let probe = name.path(pid: "probe-\(getpid())")
            do { try OutputFile.check(probe) } catch {
                throw fail("cannot write the \(what) to \(name.path(pid: "%p")): \(error)", status: 2)
            }
            if name.isPerProcess { try? FileManager.default.removeItem(atPath: probe) }
        }
    }

    /// The command as the bytes heapgate received: the last `command.count` entries of argv, if
    /// each decodes to the string the parser gave. Swift decodes argv as UTF-8 and replaces
    /// other bytes, and the program must get its arguments byte for byte (a Latin-1 file name).
    private func rawCommand() -> [[CChar]]? {
        let argc = Int(CommandLine.argc)
        guard command.count < argc else { return nil }
        var raw: [[CChar]] = []
        for index in (argc - command.count)..<argc {
            guard let argument = CommandLine.unsafeArgv[index] else { return nil }
            raw.append(Array(UnsafeBufferPointer(start: argument, count: strlen(argument) + 1)))
        }
        for (bytes, string) in zip(raw, command) {
            let decoded = bytes.dropLast().withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
            guard decoded == string else { return nil }
        }
        return raw
    }

    /// Whether a process with this pid exists (one of another user's too).
    static func isRunning(_ pid: Int) -> Bool {
        kill(pid_t(pid), 0) == 0 || errno == EPERM
    }

    /// The program exited by itself, yet its last traced image ends before its exit: that image
    /// exec'd one the shim did not get into, or lost its trace file. Said, because the report's
    /// own warning lists deaths first, and nothing died.
    static func untracedExec(pid: Int32, status: Int32, command: [String]) -> String {
        "process \(pid) exited with status \(status), but the trace of \(command.first.map(CommandLineText.controlsReplaced) ?? "its program") ends before that:"
            + " it ran a program heapgate cannot trace (one run with LD_PRELOAD cleared, as by env -i; a setuid or"
            + " statically linked one), which is not reported, closed its trace file with a raw system call, or the"
            + " trace could not be written (a full disk)"
    }

    /// An absolute path: the program's processes may change directory before they fork or exec,
    /// and each looks the directory up again. Run as root, the program may become another user
    /// (`runuser`, `setpriv`, `su`, a daemon dropping privileges) before it execs, and that
    /// process must be able to create its trace: the directory heapgate makes is then open to
    /// every user for creating files (1733: not for listing them, nor for removing another's),
    /// where it was root's alone and such processes went untraced without a word.
    private func makeTraceDirectory() throws -> String {
        if let traceDirectory {
            do {
                try FileManager.default.createDirectory(atPath: traceDirectory, withIntermediateDirectories: true)
            } catch {
                throw fail("cannot create the trace directory \(traceDirectory)", status: 2)
            }
            // One that exists but takes no files (another user's, a read-only mount) let the
            // program run untraced, and heapgate then blamed the program: "wrote no trace (it
            // ignores LD_PRELOAD, or cleared it)".
            guard access(traceDirectory, W_OK | X_OK) == 0 else {
                throw fail("cannot write to the trace directory \(traceDirectory): \(String(cString: strerror(errno)))", status: 2)
            }
            // access(2) lets root through where no file can be made: /proc, /sys (the program
            // then ran untraced, and heapgate blamed it). A file made and removed again says.
            let probe = traceDirectory + "/.heapgate-probe-\(getpid())"
            do { try OutputFile.check(probe) } catch {
                throw fail("cannot create a file in the trace directory \(traceDirectory): \(error)", status: 2)
            }
            unlink(probe)
            return absolute(traceDirectory)
        }
        // An empty TMPDIR means /tmp, as to mktemp(1), valgrind and Python's tempfile.
        let base = Environment.value("TMPDIR").flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((base + "/heapgate.XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw fail("cannot create a temporary directory in \(base): \(String(cString: strerror(errno)))", status: 1)
        }
        if geteuid() == 0 { chmod(made, 0o1733) }
        return absolute(String(cString: made))
    }

    private func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
