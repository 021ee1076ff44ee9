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
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe(), err = Pipe(), inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inPipe
        try process.run()
        // Read both pipes concurrently so a chatty child never blocks on a full pipe.
        var outData = Data(), errData = Data()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
        if let input { inPipe.fileHandleForWriting.write(input) }
        try? inPipe.fileHandleForWriting.close()
        process.waitUntilExit()
        group.wait()
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return Outcome(status: status, stdout: outData, stderr: String(decoding: errData, as: UTF8.self))
    }

    /// `heapgate run --json=… [flags] -- command…`: the outcome and the decoded report.
    static func run(_ command: [String], flags: [String] = [], environment: [String: String] = [:],
                    input: Data? = nil) throws -> (Outcome, Report) {
        let json = temporaryPath("report.json")
        defer { try? FileManager.default.removeItem(atPath: json) }
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
    struct Frame: Decodable { var address: String; var function: String?; var file: String?; var line: Int?; var module: String? }
    struct Record: Decodable { var kind: String; var bytes: UInt64; var blocks: UInt64; var frames: [Frame] }
    struct Process: Decodable {
        var pid: Int; var parentPid: Int; var command: [String]; var exitStatus: Int?; var complete: Bool
        var heap: Heap; var records: [Record]

        /// The records whose stack passes through `function`.
        func records(allocatedIn function: String) -> [Record] {
            records.filter { $0.frames.contains { $0.function == function } }
        }
    }
    var tool: String
    var version: String
    var processes: [Process]
}
