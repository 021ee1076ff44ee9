import Foundation
import Testing

/// Runs the built tool and fixtures as real processes. `make test` builds them first and sets
/// HEAPGATE_BUILD; without it the repository's build/ is used.
enum Harness {
    static let build: String = {
        if let dir = ProcessInfo.processInfo.environment["HEAPGATE_BUILD"], !dir.isEmpty { return dir }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("build").path
    }()
    static var heapgate: String { build + "/bin/heapgate" }
    static var shim: String { build + "/lib/libheapgate.so" }
    static func fixture(_ name: String) -> String { build + "/fixtures/" + name }

    struct Outcome {
        var status: Int32
        var stdout: Data
        var stderr: String
        var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    }

    /// Runs `executable` with `arguments`, feeding `input` on stdin, and waits.
    static func execute(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                        input: Data? = nil, directory: String? = nil) throws -> Outcome {
        let process = Process()
        // Through the `stdio_only` fixture, so that the program gets no descriptor but 0, 1 and
        // 2: Foundation's Process passes on descriptors that other tests' threads open meanwhile
        // (a traced `first_fd` once opened 4 instead of 3, another test's pipe at 3).
        process.executableURL = URL(fileURLWithPath: fixture("stdio_only"))
        process.arguments = [executable] + arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe(), err = Pipe(), inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inPipe
        try startUnblocked(process)
        // Read both pipes concurrently so a chatty child never blocks on a full pipe.
        let outData = Collected(), errData = Collected()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { outData.data = out.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { errData.data = err.fileHandleForReading.readDataToEndOfFile() }
        if let input { inPipe.fileHandleForWriting.write(input) }
        try? inPipe.fileHandleForWriting.close()
        process.waitUntilExit()
        group.wait()
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return Outcome(status: status, stdout: outData.data, stderr: String(decoding: errData.data, as: UTF8.self))
    }

    /// Starts `process` with no signal blocked, as from a shell. A child inherits the mask of
    /// the thread that spawns it, and Swift Testing's worker threads block most signals: a
    /// fixture would then survive signals that kill it when a user runs it.
    static func startUnblocked(_ process: Process) throws {
        var unblocked = sigset_t(), previous = sigset_t()
        sigemptyset(&unblocked)
        pthread_sigmask(SIG_SETMASK, &unblocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
    }

    /// What one reader thread collected; read only after the DispatchGroup is done with it.
    private final class Collected: @unchecked Sendable {
        var data = Data()
    }

    /// `heapgate run --json=… [flags] -- command…`: the outcome and the decoded report.
    static func run(_ command: [String], flags: [String] = [], environment: [String: String] = [:],
                    input: Data? = nil) throws -> (Outcome, Report) {
        let json = temporaryPath("report.json")
        defer { removeTemporary(json) }
        let outcome = try execute(heapgate, ["run", "--json=\(json)"] + flags + ["--"] + command,
                                  environment: environment, input: input)
        let data = try Data(contentsOf: URL(fileURLWithPath: json))
        return (outcome, try JSONDecoder().decode(Report.self, from: data))
    }

    static func temporaryPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("heapgate-tests-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    static func temporaryDirectory() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("heapgate-tests-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }

    static var valgrindAvailable: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/valgrind") }
}

/// The JSON report as tests read it (docs/json-report.md).
struct Report: Decodable {
    struct Amount: Decodable, Equatable { var bytes: UInt64; var blocks: UInt64 }
    struct Heap: Decodable { var inUseAtExit: Amount; var allocs: UInt64; var frees: UInt64; var bytesAllocated: UInt64 }
    struct Frame: Decodable {
        var address: String; var function: String?; var file: String?; var path: String?; var line: Int?; var module: String?
    }
    struct Record: Decodable {
        var kind: String; var bytes: UInt64; var blocks: UInt64; var frames: [Frame]
        var indirectBytes: UInt64?; var indirectBlocks: UInt64?; var suppressedBy: String?
    }
    struct Leaks: Decodable, Equatable {
        var definite: Amount; var indirect: Amount; var possible: Amount; var reachable: Amount; var suppressed: Amount
    }
    struct Statistics: Decodable { var events: UInt64; var lostEvents: UInt64; var allocationsWithoutStack: UInt64 }
    struct Process: Decodable {
        var pid: Int; var parentPid: Int; var command: [String]; var exitStatus: Int?; var complete: Bool
        var stoppedForSandbox: Bool
        var heap: Heap; var leaks: Leaks?; var records: [Record]
        var statistics: Statistics

        /// The records whose stack passes through `function`.
        func records(allocatedIn function: String) -> [Record] {
            records.filter { $0.frames.contains { $0.function == function } }
        }
    }
    var tool: String
    var version: String
    var processes: [Process]
}

// MARK: - Helpers for the end-to-end suites (process trees, launching, saved traces, valgrind)

extension Harness {
    /// Like `run`, but also in `directory`, and the report is nil when heapgate wrote none, so
    /// a test can still check the exit status and messages of a run that produced no report.
    static func runReport(_ command: [String], flags: [String] = [], environment: [String: String] = [:],
                          input: Data? = nil, directory: String? = nil) throws -> (Outcome, Report?) {
        let scratch = temporaryDirectory()
        defer { removeTemporary(scratch) }
        let json = scratch + "/report.json"
        let outcome = try execute(heapgate, ["run", "--json=\(json)"] + flags + ["--"] + command,
                                  environment: environment, input: input, directory: directory)
        return (outcome, try decodeReport(atPath: json))
    }

    /// `heapgate summary --json=… [flags] paths…`: the outcome and the report, if one was written.
    static func summary(_ paths: [String], flags: [String] = []) throws -> (Outcome, Report?) {
        let scratch = temporaryDirectory()
        defer { removeTemporary(scratch) }
        let json = scratch + "/report.json"
        let outcome = try execute(heapgate, ["summary", "--json=\(json)"] + flags + paths)
        return (outcome, try decodeReport(atPath: json))
    }

    /// The decoded report at `path`, or nil when there is no file (or an empty one).
    static func decodeReport(atPath path: String) throws -> Report? {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return nil }
        return try JSONDecoder().decode(Report.self, from: data)
    }

    /// Runs `command` natively with the shim preloaded (no heapgate CLI), writing its traces
    /// into `traceDirectory`, as a user saving traces for `heapgate summary` would.
    static func trace(_ command: [String], into traceDirectory: String, input: Data? = nil) throws -> Outcome {
        try execute(command[0], Array(command.dropFirst()),
                    environment: ["LD_PRELOAD": shim, "HEAPGATE_OUT": traceDirectory], input: input)
    }

    /// The trace files in `directory` (the shim names them heapgate.PID[.N].trace), by name.
    static func traceFiles(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("heapgate.") && $0.hasSuffix(".trace") }.sorted().map { directory + "/" + $0 }
    }

    /// A fresh directory that `body` may fill; removed afterwards.
    static func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
        let directory = temporaryDirectory()
        defer { removeTemporary(directory) }
        return try body(directory)
    }

    /// Removes a path made by `temporaryDirectory()` (or a file in a `temporaryPath` directory,
    /// together with that directory).
    static func removeTemporary(_ path: String) {
        let url = URL(fileURLWithPath: path)
        let parent = url.deletingLastPathComponent()
        let target = parent.lastPathComponent.hasPrefix("heapgate-tests-") ? parent : url
        guard target.lastPathComponent.hasPrefix("heapgate-tests-") else { return }
        try? FileManager.default.removeItem(at: target)
    }

    /// The canonical absolute path (symlinks resolved), as a program sees it in /proc/self/exe.
    static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// FNV-1a, 64 bits (what prints_a_lot prints for its stdin).
    static func fnv1a64(_ data: Data) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }

    /// Statuses a shell reports for a Swift runtime trap (SIGILL, SIGTRAP, SIGABRT).
    static let trapStatuses: Set<Int32> = [132, 133, 134]
}

extension Harness.Outcome {
    /// stderr split into lines, without the empty string after the final newline.
    var stderrLines: [String] {
        var lines = stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    /// stderrLines without the "==PID== " prefix valgrind and heapgate put on their lines ("==PID=="
    /// alone becomes an empty line); other lines as they are.
    var reportLines: [String] {
        stderrLines.map { line in
            guard line.hasPrefix("=="), let end = line.dropFirst(2).range(of: "==") else { return line }
            let rest = line[end.upperBound...]
            return rest.hasPrefix(" ") ? String(rest.dropFirst()) : String(rest)
        }
    }
}

/// A program started in the background, for tests that must act while it runs.
final class BackgroundProcess {
    let process = Process()
    private let output = Pipe()
    private var seen = Data()

    /// Starts `executable` with `environment` added; stdin is /dev/null, stderr is discarded.
    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try Harness.startUnblocked(process)
    }

    struct EndedEarly: Error, CustomStringConvertible {
        var output: String
        var description: String { "the program ended before printing the expected line; its stdout: \(output)" }
    }

    /// Blocks until the program's stdout contains `line` (a whole line), or throws if it ends first.
    func waitForLine(_ line: String) throws {
        let wanted = Data((line + "\n").utf8)
        while seen.range(of: wanted) == nil {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw EndedEarly(output: String(decoding: seen, as: UTF8.self)) }
            seen.append(chunk)
        }
    }

    /// Everything the program wrote to stdout, once it (and whatever shares its stdout) ended.
    func wholeOutput() -> String {
        seen.append(output.fileHandleForReading.readDataToEndOfFile())
        return String(decoding: seen, as: UTF8.self)
    }

    /// Sends `signal` and waits; returns the status as a shell reports it.
    @discardableResult
    func terminate(with signal: Int32) -> Int32 {
        if process.isRunning { _ = kill(process.processIdentifier, signal) }
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    deinit {
        if process.isRunning {
            _ = kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// The five HEAP SUMMARY figures of one process, as valgrind prints them.
struct HeapFigures: Hashable, Comparable, CustomStringConvertible {
    var bytes: UInt64
    var blocks: UInt64
    var allocs: UInt64
    var frees: UInt64
    var bytesAllocated: UInt64

    init(bytes: UInt64, blocks: UInt64, allocs: UInt64, frees: UInt64, bytesAllocated: UInt64) {
        self.bytes = bytes
        self.blocks = blocks
        self.allocs = allocs
        self.frees = frees
        self.bytesAllocated = bytesAllocated
    }

    init(_ process: Report.Process) {
        self.init(bytes: process.heap.inUseAtExit.bytes, blocks: process.heap.inUseAtExit.blocks,
                  allocs: process.heap.allocs, frees: process.heap.frees, bytesAllocated: process.heap.bytesAllocated)
    }

    private var key: [UInt64] { [bytes, blocks, allocs, frees, bytesAllocated] }
    static func < (a: HeapFigures, b: HeapFigures) -> Bool { a.key.lexicographicallyPrecedes(b.key) }

    var description: String {
        "\(bytes) B in \(blocks) blocks; \(allocs) allocs, \(frees) frees, \(bytesAllocated) bytes allocated"
    }
}

extension Report.Process {
    /// Checks that exactly one record passes through `function`, with these figures, that the
    /// frame of `function` is `file:line`, and that the frame below it is `caller` at its line.
    func expectRecord(_ function: String, bytes: UInt64, blocks: UInt64, file: String, line: Int,
                      caller: (function: String, file: String, line: Int)? = nil,
                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        let found = records(allocatedIn: function)
        let record = try #require(found.count == 1 ? found.first : nil,
                                  "pid \(pid): one record through \(function), got \(found.count)", sourceLocation: sourceLocation)
        #expect(record.bytes == bytes, "\(function)", sourceLocation: sourceLocation)
        #expect(record.blocks == blocks, "\(function)", sourceLocation: sourceLocation)
        let index = try #require(record.frames.firstIndex { $0.function == function }, sourceLocation: sourceLocation)
        #expect(record.frames[index].file == file, "\(function)", sourceLocation: sourceLocation)
        #expect(record.frames[index].line == line, "\(function)", sourceLocation: sourceLocation)
        if let caller {
            let below = try #require(index + 1 < record.frames.count ? record.frames[index + 1] : nil,
                                     "\(function) has no caller frame", sourceLocation: sourceLocation)
            #expect(below.function == caller.function, "caller of \(function)", sourceLocation: sourceLocation)
            #expect(below.file == caller.file, "caller of \(function)", sourceLocation: sourceLocation)
            #expect(below.line == caller.line, "caller of \(function)", sourceLocation: sourceLocation)
        }
    }
}
