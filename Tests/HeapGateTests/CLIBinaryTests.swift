import Foundation
import Testing

/// The CLI is linked statically, and one use of Foundation proper (FileHandle, Process, NSLock,
/// Thread) anywhere in its sources takes all of Foundation, FoundationInternationalization and
/// ICU's data into it: 77 MB instead of 28, and every `heapgate run` starting 1.5 ms later
/// (docs/architecture.md, "What the CLI costs each run").
@Suite("The CLI binary")
struct CLIBinaryTests {
    @Test func linksFoundationEssentialsAndNotFoundation() throws {
        let binary = try Data(contentsOf: URL(fileURLWithPath: Harness.heapgate))
        // Swift mangles Foundation's own symbols with this prefix; FoundationEssentials' are "$s20Foun…".
        #expect(binary.range(of: Data("$s10Foundation".utf8)) == nil,
                "\(Harness.heapgate) links Foundation: use FoundationEssentials and the wrappers in Sources/HeapGate/Support")
        #expect(binary.range(of: Data("$s20FoundationEssentials".utf8)) != nil)
    }
}
