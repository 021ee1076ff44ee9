#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Why `heapgate run` could not start the program, with the status a shell would give.
public enum LaunchError: Error, CustomStringConvertible {
    case commandNotFound(String)
    case notExecutable(String)
    /// The command names a directory (bash: "Is a directory"; execve says only EACCES).
    case isDirectory(String)
    case staticBinary(String)
    case otherArchitecture(String, program: String, shim: String)
    case secureExecution(String, why: String)
    case muslProgram(String, loader: String)
    case shimMissing([String])
    /// $HEAPGATE_SHIM names a file that cannot be read (the loader would skip it with a warning
    /// and run the program untraced).
    case shimUnreadable(String, why: String)
    /// The kernel refused to run the file (ENOEXEC): neither a program it knows (an empty or
    /// garbled file) nor a script with a `#!` line.
    case cannotExecute(String)
    /// The file is a script and its `#!` interpreter cannot be run; the errno says why.
    case badInterpreter(String, interpreter: String, Int32)
    /// The kernel found the file but not one it needs to run it (ENOENT): its loader.
    case requiredFileMissing(String)
    case spawnFailed(String, Int32)

    public var description: String {
        switch self {
        case let .commandNotFound(name): return "\(name): command not found"
        case let .notExecutable(path): return "\(path): Permission denied"
        case let .isDirectory(path): return "\(path): Is a directory"
        case let .staticBinary(path):
            return "\(path) is statically linked: LD_PRELOAD cannot load heapgate into it, so nothing can be traced"
        case let .otherArchitecture(path, program, shim):
            return "\(path) is a \(program) program and libheapgate.so is built for \(shim): the loader cannot load heapgate into it, so nothing can be traced"
        case let .muslProgram(path, loader):
            return "\(path) is linked against musl (its loader is \(loader)) and libheapgate.so against glibc: musl's loader would refuse to start it with heapgate preloaded, so nothing can be traced"
        case let .secureExecution(path, why):
            return "\(path) is \(why): it runs in secure-execution mode, where the loader ignores LD_PRELOAD, so nothing can be traced (a copy made with cp can be)"
        case let .shimMissing(places): return "cannot find libheapgate.so (looked in \(places.joined(separator: ", "))); set HEAPGATE_SHIM"
        case let .shimUnreadable(path, why): return "cannot read libheapgate.so at \(path) (HEAPGATE_SHIM): \(why)"
        case let .cannotExecute(path):
            return "\(path): cannot execute: Exec format error (not a program, nor a script that starts with #!)"
        case let .badInterpreter(path, interpreter, error):
            let why = interpreter.hasSuffix("\r") ? " (the #! line ends in a carriage return: the script has DOS line endings)" : ""
            return "\(path): bad interpreter \(ScriptInterpreter.shown(interpreter)): \(String(cString: strerror(error)))\(why)"
        case let .requiredFileMissing(path):
            return "\(path): cannot execute: required file not found (its loader, named in the file, is missing)"
        case let .spawnFailed(path, error): return "\(path): \(String(cString: strerror(error)))"
        }
    }

    /// 127 and 126 as a shell (bash 5 and dash: 127 when a file the kernel needs is missing, a
    /// script's interpreter included); 3 for a program heapgate cannot trace; 1 otherwise.
    public var exitStatus: Int32 {
        switch self {
        case .commandNotFound, .requiredFileMissing: return 127
        case let .badInterpreter(_, _, error): return error == ENOENT ? 127 : 126
        case .notExecutable, .isDirectory, .cannotExecute: return 126
        case .staticBinary, .otherArchitecture, .secureExecution, .muslProgram: return 3
        case .shimMissing, .shimUnreadable, .spawnFailed: return 1
        }
    }
}

/// The pid of the program `heapgate run` waits for, for the signal handler that passes
/// signals on (written before the handler is installed, only read by it).
nonisolated(unsafe) private var programWaitedFor: pid_t = 0

/// Starts a program with the shim preloaded and waits for it, passing stdin, stdout and
/// stderr through untouched.
public enum TracedLaunch {
    /// Finds `name` as a shell would: a path if it has a slash, else the first match in PATH.
    public static func resolve(_ name: String) throws -> String {
        decoded(try resolve(bytes: Array(name.utf8CString)))
    }

    /// `resolve` on the bytes of a NUL-terminated name, searching the bytes of PATH: neither
    /// need be UTF-8 (a Latin-1 file name), where a Swift string would replace the bytes that
    /// are not, and the program was "not found".
    static func resolve(bytes name: [CChar]) throws -> [CChar] {
        enum Kind { case missing, directory, notRunnable, runnable }
        func kind(_ path: [CChar]) -> Kind {
            var status = stat()
            guard stat(path, &status) == 0 else { return .missing }
            if status.st_mode & S_IFMT == S_IFDIR { return .directory }
            return access(path, X_OK) == 0 ? .runnable : .notRunnable
        }
        let slash = CChar(UInt8(ascii: "/"))
        if name.contains(slash) {
            switch kind(name) {
            case .missing: throw LaunchError.commandNotFound(decoded(name))
            case .directory: throw LaunchError.isDirectory(decoded(name))
            case .notRunnable: throw LaunchError.notExecutable(decoded(name))
            case .runnable: return name
            }
        }
        let path = getenv("PATH").map { Array(UnsafeBufferPointer(start: $0, count: strlen($0))) }
            ?? Array("/usr/local/bin:/usr/bin:/bin".utf8CString.dropLast())
        var denied: [CChar]?
        for dir in path.split(separator: CChar(UInt8(ascii: ":")), omittingEmptySubsequences: false) {
            let candidate = (dir.isEmpty ? [CChar(UInt8(ascii: "."))] : Array(dir)) + [slash] + name
            switch kind(candidate) {
            case .runnable: return candidate
            case .notRunnable: denied = denied ?? candidate
            case .missing, .directory: continue
            }
        }
        if let denied { throw LaunchError.notExecutable(decoded(denied)) }
        throw LaunchError.commandNotFound(decoded(name))
    }

    /// A NUL-terminated name as a string, bytes that are not UTF-8 replaced (for messages).
    private static func decoded(_ bytes: [CChar]) -> String {
        String(decoding: bytes.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The shim: $HEAPGATE_SHIM, else beside the executable (../lib/heapgate or ../lib).
    /// Plain string work on the resolved path: with Foundation's URL and environment dictionary
    /// this took 0.4 ms of every `heapgate run`'s start.
    public static func locateShim() throws -> String {
        if let explicit = Environment.value("HEAPGATE_SHIM"), !explicit.isEmpty {
            // Checked, as the places searched below are: the loader skips a preload it cannot
            // open with a warning, the program ran untraced, and the leak gate passed.
            guard access(explicit, R_OK) == 0 else {
                throw LaunchError.shimUnreadable(explicit, why: String(cString: strerror(errno)))
            }
            guard FileStatus.isRegularFile(explicit) else { throw LaunchError.shimUnreadable(explicit, why: "not a file") }
            return explicit
        }
        let bin = directoryName(of: ownExecutable()) ?? "/"
        let prefix = directoryName(of: bin) ?? "/"
        let places = [joinedPath(prefix, "lib/heapgate/libheapgate.so"), joinedPath(prefix, "lib/libheapgate.so"),
                      joinedPath(bin, "libheapgate.so")]
        if let found = places.first(where: FileStatus.exists) { return found }
        throw LaunchError.shimMissing(places)
    }

    /// This executable's path with its symbolic links resolved (/proc/self/exe), else argv[0]
    /// made absolute.
    private static func ownExecutable() -> String {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
        let length = buffer.withUnsafeMutableBytes { readlink("/proc/self/exe", $0.baseAddress!, $0.count) }
        if length > 0 { return String(decoding: buffer[..<length], as: UTF8.self) }
        let argv0 = CommandLine.arguments[0]
        return argv0.hasPrefix("/") ? argv0 : FileManager.default.currentDirectoryPath + "/" + argv0
    }

    /// Runs `arguments` with the shim preloaded, writing traces to `traceDirectory`.
    /// Returns the child's pid, its status as a shell reports it (128+N for signal N) and the
    /// signal it died of (0 when it exited).
    /// `rawArguments`, when given, are the same arguments as the bytes heapgate received: the
    /// program gets those (Swift's strings replace bytes that are not UTF-8). `whileRunning`
    /// is called once the program has started (its environment is fixed by then), before
    /// waiting for it; it gets the executable's path and the process id.
    public static func run(_ arguments: [String], rawArguments: [[CChar]]? = nil, shim: String, traceDirectory: String,
                           extraEnvironment: [String: String] = [:],
                           whileRunning: ((String, Int32) -> Void)? = nil) throws -> (pid: Int32, status: Int32, signal: Int32) {
        // Resolved and started as the bytes heapgate received. A path that is not UTF-8 (a
        // Latin-1 name, or one found through such a PATH entry) is inspected through a
        // descriptor (/proc/self/fd/N), a path a Swift string can hold.
        let spawnPath = try resolve(bytes: rawArguments?.first ?? Array(arguments[0].utf8CString))
        var opened: Int32 = -1
        defer { if opened >= 0 { close(opened) } }
        let executable: String
        if let utf8 = spawnPath.withUnsafeBufferPointer({ String(validatingCString: $0.baseAddress!) }) {
            executable = utf8
        } else {
            opened = open(spawnPath, O_RDONLY | O_CLOEXEC)
            executable = opened >= 0 ? "/proc/self/fd/\(opened)" : decoded(spawnPath)
        }
        switch ElfInspection.verdict(program: executable, shim: shim) {
        case .preloadable: break
        case .staticExecutable: throw LaunchError.staticBinary(executable)
        case let .otherArchitecture(program, shimTarget):
            throw LaunchError.otherArchitecture(executable, program: program, shim: shimTarget)
        case let .muslProgram(loader):
            throw LaunchError.muslProgram(executable, loader: loader)
        case let .secureExecution(why):
            throw LaunchError.secureExecution(executable, why: why)
        }

        var settings = extraEnvironment
        settings["HEAPGATE_OUT"] = traceDirectory
        let argumentBytes = rawArguments ?? arguments.map { Array($0.utf8CString) }
        let argv = argumentBytes.map { bytes in bytes.withUnsafeBufferPointer { strdup($0.baseAddress!) } } + [nil]
        let envp = programEnvironment(shim: preloadEntry(forShim: shim), settings: settings) + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var internalSignals = glibcInternalSignals()
        posix_spawnattr_setsigdefault(&attributes, &internalSignals)
        // The signals heapgate passes on are held from before the program starts until their
        // handlers are in place (which needs its pid), then delivered to them: one sent as soon
        // as the program was up (a test that waits for its first line, then kills heapgate)
        // killed heapgate instead. The program starts with heapgate's own mask.
        var forwarded = sigset_t(), original = sigset_t()
        sigemptyset(&forwarded)
        for signal in forwardedSignals { sigaddset(&forwarded, signal) }
        pthread_sigmask(SIG_BLOCK, &forwarded, &original)
        posix_spawnattr_setsigmask(&attributes, &original)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var pid: pid_t = 0
        let error = posix_spawn(&pid, spawnPath, nil, &attributes, argv, envp)
        guard error == 0 else {
            pthread_sigmask(SIG_SETMASK, &original, nil)
            throw LaunchError.execFailure(executable, error)
        }

        let previousActions = forwardSignals(to: pid)
        pthread_sigmask(SIG_SETMASK, &original, nil)
        defer { for (signal, action) in previousActions { var old = action; sigaction(signal, &old, nil) } }
        whileRunning?(executable, pid)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (pid, shellStatus(status), terminatingSignal(status))
    }

    /// What goes in LD_PRELOAD for `shim`: `heapgate-preload/$LIB/libheapgate.so` beside it when
    /// `make` laid that out (see the Makefile) with a link to `shim` for every expansion of
    /// $LIB it knows, else `shim` itself. glibc's loader expands $LIB and loads the shim; musl's
    /// opens the directory named "$LIB" and loads a stub that does nothing. With the shim
    /// itself there, musl's loader stopped with an error and a musl program anywhere in the
    /// traced process tree never started.
    static func preloadEntry(forShim shim: String) -> String {
        let preload = URL(fileURLWithPath: shim).deletingLastPathComponent().path + "/heapgate-preload"
        let expansions = ["lib/x86_64-linux-gnu", "lib64", "lib"]
        let shimFile = ModuleImage.resolvedPath(shim)
        guard FileStatus.exists(preload + "/$LIB/libheapgate.so"),
              expansions.allSatisfy({ ModuleImage.resolvedPath(preload + "/" + $0 + "/libheapgate.so") == shimFile })
        else { return shim }
        return preload + "/$LIB/libheapgate.so"
    }

    /// heapgate's environment, entry for entry and byte for byte (values need not be UTF-8,
    /// which Foundation's dictionary of strings would change), with the shim put first in
    /// LD_PRELOAD and `settings` set. Each entry is malloc'd; the caller frees them.
    static func programEnvironment(shim: String, settings: [String: String]) -> [UnsafeMutablePointer<CChar>?] {
        var entries: [UnsafeMutablePointer<CChar>?] = []
        var preload = Array(shim.utf8CString.dropLast())
        var index = 0
        while let entry = environ[index] {
            index += 1
            let keyLength = strcspn(entry, "=")
            let key = String(decoding: UnsafeRawBufferPointer(start: entry, count: keyLength), as: UTF8.self)
            if key == "LD_PRELOAD", entry[keyLength] == CChar(UInt8(ascii: "=")) {
                let value = UnsafeBufferPointer(start: entry + keyLength + 1, count: strlen(entry + keyLength + 1))
                if !value.isEmpty { preload += [CChar(UInt8(ascii: ":"))] + value }
                continue
            }
            if settings[key] != nil { continue }
            entries.append(strdup(entry))
        }
        let preloadEntry = Array("LD_PRELOAD=".utf8CString.dropLast()) + preload + [0]
        entries.append(preloadEntry.withUnsafeBufferPointer { strdup($0.baseAddress!) })
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) { entries.append(strdup("\(key)=\(value)")) }
        return entries
    }

    /// The signals a supervisor sends to stop or steer a program, passed on while heapgate waits.
    static let forwardedSignals: [Int32] = [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2]

    /// Makes heapgate a transparent wrapper while it waits for the program at `pid`. A signal
    /// sent to heapgate (kill, `docker stop`, a CI runner, `kill $!` in a script) goes on to
    /// the program, which under valgrind would have received it itself: left alone, heapgate
    /// died and the program ran on, orphaned. The terminal's ^C and ^\ (and ^Z) reach the
    /// whole foreground job, the program included, so the kernel's own signals (SI_KERNEL)
    /// are not passed on again; heapgate outlives them, as a shell does its foreground job.
    /// A signal sent with `kill` to the whole process group reaches the program twice.
    /// Returns the actions to put back.
    static func forwardSignals(to pid: pid_t) -> [(Int32, sigaction)] {
        programWaitedFor = pid
        var previous: [(Int32, sigaction)] = []
        for signal in forwardedSignals {
            var action = sigaction()
            action.__sigaction_handler.sa_sigaction = { signal, info, _ in
                guard let info, info.pointee.si_code <= 0 else { return } // SI_USER, SI_QUEUE, SI_TKILL
                kill(programWaitedFor, signal)
            }
            action.sa_flags = SA_SIGINFO | SA_RESTART
            sigemptyset(&action.sa_mask)
            var old = sigaction()
            if sigaction(signal, &action, &old) == 0 { previous.append((signal, old)) }
        }
        return previous
    }

    /// Signals 32 and 33, which glibc keeps for itself (thread cancellation, set*id across
    /// threads). glibc's posix_spawn hands any of them this process has a handler for to the
    /// child as ignored, and exec keeps that; a shell's fork and exec leaves them at their
    /// default. So the program gets them at their default, as from a shell. (Built bit by bit:
    /// sigaddset refuses glibc's own signals.)
    static func glibcInternalSignals() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        set.__val.0 |= (1 << (32 - 1)) | (1 << (33 - 1))
        return set
    }

    /// WTERMSIG of a waitpid status (without WUNTRACED, never a stop): the signal that ended
    /// the process, or 0 when it exited.
    static func terminatingSignal(_ status: Int32) -> Int32 { status & 0x7f }

    /// WEXITSTATUS, or 128+N for death by signal N.
    static func shellStatus(_ status: Int32) -> Int32 {
        let signal = terminatingSignal(status)
        if signal == 0 { return (status >> 8) & 0xff }
        return 128 + signal
    }
}
