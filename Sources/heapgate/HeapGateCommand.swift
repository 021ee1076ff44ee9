import ArgumentParser

@main
struct HeapGateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heapgate",
        abstract: "Trace the heap of any Linux program and report what it leaves in use, like valgrind memcheck, at close to native speed.",
        version: "0.1.0",
        subcommands: [RunCommand.self, SummaryCommand.self]
    )
}
